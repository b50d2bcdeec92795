#!/usr/bin/env node
// Runs every compiled *.test.js under dist/ with Node's test runner (the README's `npm test`).
// Listing files explicitly keeps test/helpers/*.js from being run as tests.
//
// One queue: every file is a run (`node --test <file>` with its settings), and so is every file
// of the passes that prove the same behaviours again under other settings (below). The runs share
// one queue, slowest first (test-services.mjs), POPLAR_TEST_CONCURRENCY at a time, so no pass
// waits for the slow tail of another. Each run's output is printed whole when it ends (TAP, or
// spec on a terminal, after a `# run-tests:` line naming the file and its setting); the run ends
// with one summary line, the failed runs by name, and the skipped groups.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { longestFirst, recordTimes, startTestServices } from './test-services.mjs';

function find(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) find(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filter = process.argv.slice(2);
let files = [...find('dist/src'), ...find('dist/test')].sort();
if (filter.length > 0) files = files.filter((f) => filter.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('run-tests: no test files found (did the build run?)');
  process.exit(1);
}
// Runs at once. Measured on the 2-core machine (docs/testing.md): most runs wait on sockets,
// timers and child processes, so more runs than cores keep both cores busy; beyond that the
// `poplar serve` start-ups of the workers pass make it CPU-bound. POPLAR_TEST_CONCURRENCY
// overrides (1 runs the files one by one).
const concurrency = Number(process.env.POPLAR_TEST_CONCURRENCY ?? 4);
if (!Number.isInteger(concurrency) || concurrency < 1) {
  console.error('run-tests: POPLAR_TEST_CONCURRENCY must be a whole number of at least 1');
  process.exit(2);
}
// The same behaviours proven again under other settings of the test helpers (test/helpers),
// unless the caller set the variable itself (then the caller's value holds for every run):
// - R-X16: the e2e files and the `poplar serve` files of test/ops and test/cluster that honour it,
//   with POPLAR_TEST_WORKERS=2: startTestServer and startPoplar then start `poplar serve` with two
//   worker processes, so every behaviour is proven across them;
// - R-X17: the in-process e2e files (startTestServer) with POPLAR_TEST_STORE=postgres: the same
//   sessions on the PostgreSQL store, in the run's shared cluster.
const passes = [
  { name: 'POPLAR_TEST_WORKERS', value: '2', pattern: /dist\/test\/(e2e\/|ops\/(crash-safety|lifecycle|log-escape|reload)\.|cluster\/haproxy\.)/ },
  { name: 'POPLAR_TEST_STORE', value: 'postgres', pattern: /dist\/test\/e2e\/(auth-clients|auth|clients|commands|debian-clients|limits|sasl|tls)\./ },
];
// `key`: the run's name in the output and in dist/.test-times.json (`<file>` or `<file> NAME=value`).
const runs = files.map((file) => ({ file, key: file, setting: {} }));
const again = [];
for (const pass of passes) {
  const chosen = process.env[pass.name] === undefined ? files.filter((f) => pass.pattern.test(f)) : [];
  if (chosen.length > 0) again.push(`${chosen.length} again with ${pass.name}=${pass.value}`);
  for (const file of chosen) runs.push({ file, key: `${file} ${pass.name}=${pass.value}`, setting: { [pass.name]: pass.value } });
}

// Tests that need a program this machine lacks skip and append a line here (test/helpers/external.ts);
// the run ends naming every skipped group, so a skip is never silent.
const workDir = mkdtempSync(join(tmpdir(), 'poplar-test-run-'));
const skipLog = join(workDir, 'skips');
const tty = process.stdout.isTTY === true;
const counter = join(dirname(fileURLToPath(import.meta.url)), 'file-times.mjs');
// Services shared by the whole run (one PostgreSQL cluster), stopped however the run ends.
const services = await startTestServices(files);
const baseEnv = { ...process.env, ...services.env, POPLAR_SKIP_LOG: skipLog, ...(tty ? { FORCE_COLOR: '1' } : {}) };

const children = new Set();
let interrupted;
const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
// Each run is a process group of its own (its test process and the servers it started): a signal
// to the runner goes to every group, as a terminal's Ctrl-C would.
const onSignal = (sig) => {
  interrupted = sig;
  for (const child of children) {
    try {
      process.kill(-child.pid, sig);
    } catch {
      // The group has ended already.
    }
  }
};
for (const s of signals) process.on(s, onSignal);

/** One `node --test` for one run; resolves once it has ended and its output is printed. */
function execute(run, n) {
  const report = join(workDir, `${n}.json`);
  const args = ['--test', '--test-timeout=180000', `--test-reporter=${tty ? 'spec' : 'tap'}`, '--test-reporter-destination=stdout',
    `--test-reporter=${counter}`, `--test-reporter-destination=${report}`, run.file];
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { env: { ...baseEnv, ...run.setting }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    children.add(child);
    const out = [];
    const err = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.on('close', (code, signal) => {
      children.delete(child);
      const ms = Date.now() - started;
      process.stdout.write(`# run-tests: ${run.key} (${(ms / 1000).toFixed(1)} s)\n`);
      process.stdout.write(Buffer.concat(out));
      process.stderr.write(Buffer.concat(err));
      let counts;
      try {
        counts = JSON.parse(readFileSync(report, 'utf8'));
      } catch {
        counts = undefined;
      }
      resolve({ run, status: code ?? (signal ? 1 : 0), ms, counts });
    });
  });
}

const startedAt = Date.now();
console.log(`run-tests: ${files.length} files${again.map((a) => `, ${a}`).join('')}: ${runs.length} runs, ${concurrency} at a time`);
const queue = longestFirst(runs);
const results = [];
let next = 0;
async function lane() {
  while (next < queue.length && interrupted === undefined) {
    const n = next++;
    results.push(await execute(queue[n], n));
  }
}
await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, lane));
for (const s of signals) process.off(s, onSignal);
await services.stop();

// Each run's wall time orders the next run's queue; an interrupted run is not recorded.
if (interrupted === undefined) recordTimes(Object.fromEntries(results.map((r) => [r.run.key, r.ms])));
const sum = { tests: 0, pass: 0, fail: 0, skipped: 0, todo: 0 };
for (const r of results) for (const k of Object.keys(sum)) sum[k] += r.counts?.[k] ?? 0;
const failed = results.filter((r) => r.status !== 0);
console.log(`run-tests: ${results.length} runs of ${runs.length} in ${((Date.now() - startedAt) / 1000).toFixed(0)} s: ` +
  `${sum.tests} tests, ${sum.pass} passed (${sum.skipped} skipped, ${sum.todo} todo), ${sum.fail} failed; ${failed.length} runs failed`);
for (const r of failed) console.log(`run-tests: failed: ${r.run.key} (exit ${r.status})`);
if (process.env.POPLAR_TEST_TIMES) {
  console.error('run-tests: slowest runs (wall time of each `node --test <file>`):');
  for (const r of [...results].sort((a, b) => b.ms - a.ms).slice(0, 15)) console.error(`${(r.ms / 1000).toFixed(1).padStart(7)} s  ${r.run.key}`);
}
if (existsSync(skipLog)) {
  const groups = new Map();
  for (const line of readFileSync(skipLog, 'utf8').split('\n')) {
    const [pkg, reason] = line.split('\t');
    if (pkg && reason) groups.set(pkg, reason);
  }
  if (groups.size > 0) {
    const pkgs = [...groups.keys()].sort();
    console.log(`run-tests: skipped for missing programs: ${[...groups.values()].sort().join('; ')}`);
    console.log(`run-tests: to run them too: apt-get install ${pkgs.join(' ')}`);
  }
}
rmSync(workDir, { recursive: true, force: true });
if (interrupted !== undefined) console.log(`run-tests: interrupted (${interrupted}); ${queue.length - results.length} runs not finished`);
process.exit(interrupted !== undefined ? 1 : failed.length > 0 ? 1 : 0);

#!/usr/bin/env node
// Runs every compiled *.test.js under dist/ with Node's test runner (the README's `npm test`).
// Listing files explicitly keeps test/helpers/*.js from being run as tests.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { longestFirst, runNode, startTestServices } from './test-services.mjs';

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
// Tests that need a program this machine lacks skip and append a line here (test/helpers/external.ts);
// the run ends naming every skipped group, so a skip is never silent.
const skipDir = mkdtempSync(join(tmpdir(), 'poplar-skips-'));
const skipLog = join(skipDir, 'skips');
// Test files run in parallel processes. Most tests wait on sockets, timers and child processes,
// not the CPU, so more files than cores run at once; Node's default (cores - 1) is one file at a
// time on a 2-core machine. POPLAR_TEST_CONCURRENCY overrides (1 runs the files one by one).
const concurrency = Number(process.env.POPLAR_TEST_CONCURRENCY ?? 3);
if (!Number.isInteger(concurrency) || concurrency < 1) {
  console.error('run-tests: POPLAR_TEST_CONCURRENCY must be a whole number of at least 1');
  process.exit(2);
}
// scripts/file-times.mjs records each file's time for the next run's order (test-services.mjs);
// POPLAR_TEST_TIMES=1 also prints the slowest files on stderr. Node's default reporter stays.
const reporters = [`--test-reporter=${process.stdout.isTTY ? 'spec' : 'tap'}`, '--test-reporter-destination=stdout',
  `--test-reporter=${join(dirname(fileURLToPath(import.meta.url)), 'file-times.mjs')}`, '--test-reporter-destination=stderr'];
// Services shared by the whole run (one PostgreSQL cluster), stopped however the run ends.
const services = await startTestServices(files);
const r = await runNode(['--test', `--test-concurrency=${concurrency}`, '--test-timeout=180000', ...reporters, ...longestFirst(files)], {
  ...process.env, ...services.env, POPLAR_SKIP_LOG: skipLog,
});
// The same behaviours proven again under other settings of the test helpers (test/helpers),
// unless the caller set the variable itself (then one pass, with the caller's value):
// - R-X16: the e2e files and the `poplar serve` files of test/ops and test/cluster that honour it,
//   with POPLAR_TEST_WORKERS=2: startTestServer and startPoplar then start `poplar serve` with two
//   worker processes, so every behaviour is proven across them;
// - R-X17: the in-process e2e files (startTestServer) with POPLAR_TEST_STORE=postgres: the same
//   sessions on the PostgreSQL store, in the run's shared cluster.
const passes = [
  { name: 'POPLAR_TEST_WORKERS', value: '2', pattern: /dist\/test\/(e2e\/|ops\/(crash-safety|lifecycle|log-escape|reload)\.|cluster\/haproxy\.)/ },
  { name: 'POPLAR_TEST_STORE', value: 'postgres', pattern: /dist\/test\/e2e\/(auth-clients|auth|clients|commands|debian-clients|limits|sasl|tls)\./ },
];
let passStatus = 0;
for (const pass of passes) {
  const chosen = process.env[pass.name] === undefined ? files.filter((f) => pass.pattern.test(f)) : [];
  if (chosen.length === 0) continue;
  console.log(`run-tests: ${chosen.length} files again with ${pass.name}=${pass.value}`);
  const started = Date.now();
  const { status } = await runNode(['--test', `--test-concurrency=${concurrency}`, '--test-timeout=180000', ...reporters, ...longestFirst(chosen)], {
    ...process.env, ...services.env, POPLAR_SKIP_LOG: skipLog, [pass.name]: pass.value,
  });
  console.log(`run-tests: the ${pass.name}=${pass.value} pass took ${((Date.now() - started) / 1000).toFixed(0)} s (exit ${status})`);
  if (status !== 0) passStatus = status;
}
await services.stop();
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
rmSync(skipDir, { recursive: true, force: true });
process.exit(r.status === 0 ? passStatus : r.status);

/**
 * `node dist/bench/deliver-procs.js`: Maildir deliveries from P processes at once to the same
 * maildrops, as P server workers make them (issue 14), without a server or sockets. Each child
 * process runs L loops, each delivering 4 KB messages through a MaildirStore to maildrops
 * `u0…u<M-1>` in turn, for --seconds; the parent prints the deliveries/s of all of them, each
 * process's latency per delivery (p50, p99, max) and CPU per delivery. Nothing asserted.
 *
 *   node dist/bench/deliver-procs.js --procs 1 --loops 8     # one process
 *   node dist/bench/deliver-procs.js --procs 2 --loops 4     # two, same total concurrency
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from './args.js';
import { MaildirStore } from '../src/storage/maildir/maildir-store.js';

const a = parseArgs(process.argv.slice(2));
const seconds = a.num('seconds', 5);
const maildrops = a.num('maildrops', 10);

interface ChildResult { n: number; p50: number; p99: number; max: number; cpuMs: number }

async function child(dir: string, index: number, loops: number): Promise<void> {
  const store = new MaildirStore({ path: (u) => join(dir, u) });
  const latencies: number[] = [];
  const end = Date.now() + seconds * 1000;
  const body = Buffer.from(`${'x'.repeat(4000)}\r\n`);
  const cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: loops }, async (_, c) => {
    for (let j = c; Date.now() < end; j++) {
      const t = performance.now();
      await store.deliver(`u${(j * 3 + index) % maildrops}`, body);
      latencies.push(performance.now() - t);
    }
  }));
  const cpu = process.cpuUsage(cpu0);
  await store.close();
  latencies.sort((x, y) => x - y);
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))] ?? 0;
  const out: ChildResult = { n: latencies.length, p50: at(0.5), p99: at(0.99), max: at(1), cpuMs: (cpu.user + cpu.system) / 1000 / Math.max(1, latencies.length) };
  process.stdout.write(JSON.stringify(out));
}

async function main(): Promise<void> {
  const procs = a.num('procs', 2);
  const loops = a.num('loops', 4);
  const dir = mkdtempSync(join(a.str('dir', tmpdir()), 'poplar-deliver-procs-'));
  const self = fileURLToPath(import.meta.url);
  try {
    const results = await Promise.all(Array.from({ length: procs }, (_, i) => new Promise<ChildResult>((done, fail) => {
      const c = spawn(process.execPath, [self, '--child', dir, '--index', String(i), '--loops', String(loops),
        '--seconds', String(seconds), '--maildrops', String(maildrops)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      c.stdout.on('data', (d: Buffer) => (out += d.toString()));
      c.on('exit', (code) => (code === 0 ? done(JSON.parse(out) as ChildResult) : fail(new Error(`child ${i} exited ${code}`))));
    })));
    const total = results.reduce((s, r) => s + r.n, 0);
    const each = (f: (r: ChildResult) => number, digits: number): string => results.map((r) => f(r).toFixed(digits)).join('/');
    console.log(`${procs} process(es) x ${loops} loops, ${maildrops} maildrops: ${(total / seconds).toFixed(0)} deliveries/s; ` +
      `per process p50 ${each((r) => r.p50, 1)} ms, p99 ${each((r) => r.p99, 1)} ms, max ${each((r) => r.max, 0)} ms, CPU ${each((r) => r.cpuMs, 2)} ms per delivery`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const run = a.has('child') ? child(a.str('child', ''), a.num('index', 0), a.num('loops', 4)) : main();
run.catch((e: unknown) => {
  console.error(`deliver-procs: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});

/**
 * Micro-benchmark of MaildirStore.open on a big maildrop, in-process (no sockets): seeds
 * `--messages` files (default 50,000, 500–4,000 octets, LF line ends, Postfix-style names in
 * new/ with no size fields, as bench/messages.ts seeds bigbox), then times open+release at first
 * sight and `--reps` settled opens, printing wall and CPU (user+system of the whole process,
 * worker threads included) for each. Also checks that every open sees every message with the
 * expected exact (CRLF) size. Usage: node dist/bench/maildir-open.js [--messages N] [--reps N] [--dir D]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MaildirStore } from '../src/storage/maildir/maildir-store.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
}

const n = arg('messages', 50_000);
const reps = arg('reps', 5);
const dirArg = process.argv.indexOf('--dir');
const base = dirArg < 0 ? mkdtempSync(join(tmpdir(), 'poplar-open-bench-')) : process.argv[dirArg + 1]!;
const root = join(base, 'box');
rmSync(root, { recursive: true, force: true });
for (const d of ['new', 'cur', 'tmp']) mkdirSync(join(root, d), { recursive: true });
let expectedOctets = 0;
const t0 = 1763726400;
for (let i = 0; i < n; i++) {
  const size = 500 + ((i * 7919) % 3500);
  const line = 'x'.repeat(71) + '\n';
  let body = `Subject: m${i}\n\n`;
  while (body.length < size) body += line;
  body = body.slice(0, size - 1) + '\n';
  writeFileSync(join(root, 'new', `${t0 + i}.M${i}P1.bench`), body);
  expectedOctets += body.length + (body.match(/\n/g)?.length ?? 0);
}

const store = new MaildirStore({ path: () => root });

async function once(label: string): Promise<void> {
  const cpu0 = process.cpuUsage();
  const w0 = performance.now();
  const snap = await store.open('box', { exclusive: false });
  const wall = performance.now() - w0;
  const cpu = process.cpuUsage(cpu0);
  let octets = 0;
  for (const m of snap.messages) octets += m.size;
  await snap.release();
  if (snap.messages.length !== n || octets !== expectedOctets) {
    throw new Error(`${label}: saw ${snap.messages.length} messages / ${octets} octets, expected ${n} / ${expectedOctets}`);
  }
  const ms = (x: number): string => x.toFixed(1).padStart(8);
  console.log(`${label.padEnd(12)} wall ${ms(wall)} ms  cpu ${ms((cpu.user + cpu.system) / 1000)} ms (user ${ms(cpu.user / 1000)}, sys ${ms(cpu.system / 1000)})`);
}

await once('first sight');
for (let i = 1; i <= reps; i++) await once(`settled ${i}`);
if (dirArg < 0) rmSync(base, { recursive: true, force: true });

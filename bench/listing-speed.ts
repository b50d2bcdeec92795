/**
 * Micro-benchmark of the listing hot paths on a settled big Maildir, in-process (no sockets):
 * settled open+Maildrop+STAT (login+STAT without authentication), LIST and UIDL of every message
 * (the real handlers, their chunks consumed as a socket would), and RETR of `--retr` messages
 * spread over the box (open, read every chunk). Prints the median and range over `--reps` runs.
 * Usage: node dist/bench/listing-speed.js [--messages N] [--reps N] [--retr N]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { list, stat, uidl } from '../src/commands/listing.js';
import type { CommandContext } from '../src/session/context.js';
import { Maildrop } from '../src/session/maildrop.js';
import { openMessage } from '../src/storage/mail-store.js';
import { MaildirStore } from '../src/storage/maildir/maildir-store.js';
import { releaseChunk } from '../src/protocol/chunk-pool.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
}

const n = arg('messages', 50_000);
const reps = arg('reps', 15);
const retrN = arg('retr', 2000);
const base = mkdtempSync(join(tmpdir(), 'poplar-listing-speed-'));
const root = join(base, 'box');
for (const d of ['new', 'cur', 'tmp']) mkdirSync(join(root, d), { recursive: true });
for (let i = 0; i < n; i++) {
  writeFileSync(join(root, 'new', `${1763726400 + i}.M${100000 + i}P${20000 + (i % 5000)}.mail.example.org`), `Subject: m${i}\n\n${'x'.repeat(500 + ((i * 7919) % 3500))}\n`);
}
const store = new MaildirStore({ path: () => root });
await (await store.open('box', { exclusive: false })).release();
await new Promise((r) => setTimeout(r, 300)); // past the dirty window: the listing is cached
await (await store.open('box', { exclusive: false })).release();

let octets = 0;
function ctxFor(maildrop: Maildrop): CommandContext {
  const ctx = {
    state: { phase: 'transaction', user: 'box', maildrop },
    reply: (b: Buffer) => void (octets += b.length),
    sendBody: async (status: Buffer, body: AsyncIterable<Buffer>) => {
      octets += status.length;
      for await (const c of body) octets += c.length;
      return octets;
    },
  };
  return ctx as unknown as CommandContext;
}

const times: Record<string, number[]> = { 'login+STAT': [], LIST: [], UIDL: [], [`RETR x${retrN}`]: [] };
for (let r = 0; r < reps; r++) {
  const now = (): number => {
    const c = process.cpuUsage();
    return (c.user + c.system) / 1000;
  };
  let t = now();
  const snap = await store.open('box', { exclusive: false });
  const maildrop = await Maildrop.open(snap, []);
  const ctx = ctxFor(maildrop);
  await stat.run(ctx, { name: 'STAT' } as never);
  times['login+STAT']!.push(now() - t);
  t = now();
  await list.run(ctx, { name: 'LIST' } as never);
  times.LIST!.push(now() - t);
  t = now();
  await uidl.run(ctx, { name: 'UIDL' } as never);
  times.UIDL!.push(now() - t);
  t = now();
  for (let i = 0; i < retrN; i++) {
    const at = maildrop.check(1 + Math.floor((i * maildrop.count) / retrN));
    const src = await openMessage(snap, snap.list.id(at), at);
    for (let c = await src.next(); c !== undefined; c = await src.next()) {
      octets += c.length;
      releaseChunk(c);
    }
  }
  times[`RETR x${retrN}`]!.push(now() - t);
  await snap.release();
}
for (const [name, ts] of Object.entries(times)) {
  const s = [...ts].sort((a, b) => a - b);
  console.log(`${name.padEnd(12)} CPU min ${s[0]!.toFixed(2).padStart(7)} ms  median ${s[s.length >> 1]!.toFixed(2).padStart(7)} ms  max ${s[s.length - 1]!.toFixed(2).padStart(7)} ms`);
}
await store.close();
rmSync(base, { recursive: true, force: true });
if (octets === 0) throw new Error('nothing sent');

/**
 * Memory per message of a Maildir maildrop's listing, in-process (no sockets). Seeds `--messages`
 * files (default 50,000; Postfix-style names in new/ with no size fields, so a first sight must
 * size every file and give it a uid), then prints, per message:
 * - peak during first sight: the main isolate's heap + external memory (typed arrays, Buffers)
 *   sampled every 2 ms while the first open runs, minus the figure before it (after a GC),
 *   garbage included; and the live peak: the same after a full collection, every 25 ms;
 * - held: after a GC, with the open snapshot (login+STAT: the store's cached listing and uidlist
 *   plus the snapshot and a session's Maildrop); with `--sessions` snapshots open at once (they
 *   share the listing); and after all are released (the registry's cache alone);
 * - RSS (the whole process, first-sight worker threads included) before and at the end.
 * Run with --expose-gc: node --expose-gc dist/bench/listing-memory.js [--messages N] [--sessions K]
 * The first-sight worker threads' heaps (maildir-bulk.ts) are not in the heap figures; RSS has them.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Maildrop } from '../src/session/maildrop.js';
import { MaildirStore } from '../src/storage/maildir/maildir-store.js';
import type { MaildropSnapshot } from '../src/storage/mail-store.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
}

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const n = arg('messages', 50_000);
const sessions = arg('sessions', 4);
const base = mkdtempSync(join(tmpdir(), 'poplar-listing-mem-'));
const root = join(base, 'box');
for (const d of ['new', 'cur', 'tmp']) mkdirSync(join(root, d), { recursive: true });
const t0 = 1763726400;
for (let i = 0; i < n; i++) {
  const size = 500 + ((i * 7919) % 3500);
  writeFileSync(join(root, 'new', `${t0 + i}.M${100000 + i}P${20000 + (i % 5000)}.mail.example.org`), `Subject: m${i}\n\n${'x'.repeat(size)}\n`);
}

function used(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}
function settle(): number {
  for (let i = 0; i < 3; i++) gc!();
  return used();
}
const perMsg = (bytes: number): string => `${(bytes / n).toFixed(0).padStart(6)} B/message`;

const store = new MaildirStore({ path: () => root });
const rss0 = process.memoryUsage().rss;
const before = settle();
let peak = before;
let livePeak = before;
const timer = setInterval(() => {
  peak = Math.max(peak, used());
}, 2);
// Every 25 ms a full collection first: what the first sight holds alive then, garbage excluded.
const liveTimer = setInterval(() => {
  livePeak = Math.max(livePeak, settle());
}, 25);
const first = await store.open('box', { exclusive: false });
clearInterval(timer);
clearInterval(liveTimer);
peak = Math.max(peak, used());
if (countOf(first) !== n) throw new Error(`first sight listed ${countOf(first)} of ${n}`);
await first.release();
console.log(`messages ${n}`);
console.log(`first sight peak (main heap+external)   ${perMsg(peak - before)}`);
console.log(`first sight peak live (after GC)        ${perMsg(livePeak - before)}`);

const held: MaildropSnapshot[] = [];
const drops: Maildrop[] = [];
held.push(await store.open('box', { exclusive: false }));
drops.push(new Maildrop(held[0]!));
const stat = drops[0]!.stat();
if (stat.count !== n) throw new Error(`STAT ${stat.count}`);
console.log(`held, one session (login+STAT)          ${perMsg(settle() - before)}`);
for (let i = 1; i < sessions; i++) {
  held.push(await store.open('box', { exclusive: false }));
  drops.push(new Maildrop(held[i]!));
}
console.log(`held, ${String(sessions).padEnd(2)} sessions                     ${perMsg(settle() - before)}`);
for (const s of held) await s.release();
held.length = 0;
drops.length = 0;
console.log(`held, no session (store cache)          ${perMsg(settle() - before)}`);
console.log(`RSS ${(rss0 / 2 ** 20).toFixed(0)} MiB before, ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB now (worker threads included)`);
await store.close();
rmSync(base, { recursive: true, force: true });

function countOf(s: MaildropSnapshot): number {
  return new Maildrop(s).count;
}

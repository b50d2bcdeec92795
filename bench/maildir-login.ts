/**
 * Micro-benchmark of the per-login storage work on a small maildrop: `--logins` sequential
 * open + release pairs (no sockets, no authentication) on a maildrop of `--messages` delivered
 * messages, printing CPU and wall per login. Usage: node dist/bench/maildir-login.js [--logins N]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MaildirStore } from '../src/storage/maildir/maildir-store.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
}
const logins = arg('logins', 2000);
const base = mkdtempSync(join(tmpdir(), 'poplar-login-bench-'));
const store = new MaildirStore({ path: (u) => join(base, u) });
for (let i = 0; i < arg('messages', 20); i++) await store.deliver('alice', Buffer.from(`Subject: ${i}\r\n\r\nbody\r\n`));
await new Promise((r) => setTimeout(r, 1100)); // past any dirty window
const cpu0 = process.cpuUsage();
const w0 = performance.now();
for (let i = 0; i < logins; i++) await (await store.open('alice', { exclusive: false })).release();
const wall = performance.now() - w0;
const cpu = process.cpuUsage(cpu0);
console.log(`${logins} logins: ${((cpu.user + cpu.system) / logins).toFixed(1)} µs CPU, ${((wall * 1000) / logins).toFixed(1)} µs wall per login`);
rmSync(base, { recursive: true, force: true });

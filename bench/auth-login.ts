/**
 * `node dist/bench/auth-login.js [ITERATIONS]`: the CPU one password login costs, measured with
 * process.cpuUsage (every thread of the process, so scrypt in the threadpool counts) and, for
 * the part that blocks the event loop, the main thread's share where it can be told apart. For
 * a Dovecot-made `{SHA512-CRYPT}` user (5,000 rounds, as the login benchmark uses): one SHA-crypt
 * hash, in-thread and on the worker pool the server uses (sha-crypt-pool.ts); the scrypt dummy check at the default cost; `Authenticator.login` uncached (the scheme
 * plus the dummy, R-S13) and cached (auth/login-cache.ts); and the heap per cache entry.
 * Prints figures; asserts nothing.
 */
import { Authenticator } from '../src/auth/authenticator.js';
import type { UserRecord } from '../src/auth/directory.js';
import { verifyDummy } from '../src/auth/password.js';
import { shaCrypt } from '../src/auth/sha-crypt.js';
import { shaCryptPooled, warmShaCryptPool } from '../src/auth/sha-crypt-pool.js';
import { LoginCache } from '../src/auth/login-cache.js';

const STORED = '{SHA512-CRYPT}$6$2xHtSu1OvXv5HAn1$r6VHA1kMqlUqOCNOFauxeEeY4OpONe2zst.4/FeZgzbyLXHrBTwTsr0h5MqzQkFI47xlw5xs4OsQqATNqlFAh/';
const PASSWORD = 'bench-password';
const SCRYPT_COST = 15;
const n = Number(process.argv[2] ?? 300);

const record: UserRecord = { name: 'bench', password: STORED, grants: [] };
const directory = { lookup: async (name: string) => (name === 'bench' ? record : undefined) };

async function measure(label: string, iterations: number, fn: () => Promise<unknown>, per = 1): Promise<void> {
  for (let i = 0; i < Math.min(20, iterations); i++) await fn();
  const t0 = process.cpuUsage();
  const w0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) await fn();
  const cpu = process.cpuUsage(t0);
  const wall = Number(process.hrtime.bigint() - w0) / 1e6;
  const ms = (cpu.user + cpu.system) / 1000 / iterations / per;
  console.log(`${label.padEnd(46)} ${ms.toFixed(3).padStart(8)} ms CPU  ${(wall / iterations / per).toFixed(3).padStart(8)} ms wall  (${iterations}×)`);
}

const pw = Buffer.from(PASSWORD);
await measure('shaCrypt SHA-512, 5000 rounds (in-thread)', n, () => shaCrypt('sha512', pw, '2xHtSu1OvXv5HAn1'));
// The pool runs a job in-thread until a worker has loaded (sha-crypt-pool.ts): start and wait.
warmShaCryptPool();
await new Promise((r) => setTimeout(r, 300));
await measure('shaCrypt SHA-512, 5000 rounds (pool, serial)', n, () => shaCryptPooled('sha512', pw, '2xHtSu1OvXv5HAn1'));
await measure('shaCrypt SHA-512 (pool, 8 at once) per hash', Math.ceil(n / 8), async () => {
  await Promise.all(Array.from({ length: 8 }, () => shaCryptPooled('sha512', pw, '2xHtSu1OvXv5HAn1')));
}, 8);
await measure(`verifyDummy scrypt ln=${SCRYPT_COST} (threadpool)`, Math.max(10, Math.floor(n / 10)), () => verifyDummy(PASSWORD, 'scrypt', SCRYPT_COST));
const uncached = new Authenticator(directory, { scryptCost: SCRYPT_COST });
await measure('Authenticator.login, failed (wrong password)', Math.max(10, Math.floor(n / 10)), async () => {
  if ((await uncached.login('bench', `${PASSWORD}x`)) !== undefined) throw new Error('login succeeded');
});
await measure('Authenticator.login, failed (unknown user)', Math.max(10, Math.floor(n / 10)), async () => {
  if ((await uncached.login('nobody', PASSWORD)) !== undefined) throw new Error('login succeeded');
});
await measure('Authenticator.login, uncached', Math.max(10, Math.floor(n / 10)), async () => {
  if ((await uncached.login('bench', PASSWORD)) === undefined) throw new Error('login failed');
});
const cached = new Authenticator(directory, { scryptCost: SCRYPT_COST, cache: { ttlMs: 3_600_000, maxEntries: 10_000 } });
await measure('Authenticator.login, cached', n * 10, async () => {
  if ((await cached.login('bench', PASSWORD)) === undefined) throw new Error('login failed');
});

const gc = (globalThis as { gc?: () => void }).gc;
if (gc !== undefined) {
  const entries = 10_000;
  const cache = new LoginCache({ ttlMs: 3_600_000, maxEntries: entries });
  // The names exist anyway (the directory's records); the cache's own bytes are what is measured.
  const names = Array.from({ length: entries }, (_, i) => `user${i}@example.org`);
  cache.remember('warm-up', STORED, PASSWORD);
  for (let i = 0; i < 3; i++) gc();
  const before = process.memoryUsage();
  for (const name of names) cache.remember(name, STORED, PASSWORD);
  for (let i = 0; i < 3; i++) gc();
  const after = process.memoryUsage();
  const per = (after.heapUsed + after.external - before.heapUsed - before.external) / entries;
  console.log(`login cache: ~${per.toFixed(0)} bytes per entry besides the name (heap + external, ${entries} entries)`);
} else {
  console.log('(run with --expose-gc for the bytes per cache entry)');
}

/**
 * `node dist/bench/auth-loop.js [CONCURRENT] [ROUNDS] [mixed|ok]`: how long password logins block
 * the event loop. CONCURRENT uncached `Authenticator.login`s of a Dovecot-made `{SHA512-CRYPT}`
 * user (`mixed`: half succeeding, a quarter with a wrong password, a quarter for an unknown user;
 * `ok`: all succeeding, SHA-crypt only) are started at once,
 * ROUNDS times, while monitorEventLoopDelay samples the loop every 10 ms (resolution) and a 5 ms
 * interval records the longest gap between its ticks: the longest stall and the p99 delay are
 * what any other session's command waits at worst behind login hashing. Also prints the wall
 * time per batch and the process CPU (every thread) per login. Run twice: with SHA-crypt
 * in-thread on the event loop (as before sha-crypt-pool.ts, injected through the Authenticator's
 * verify/dummy hooks) and as the server runs it, on the worker pool. Prints figures; asserts nothing.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Authenticator } from '../src/auth/authenticator.js';
import type { UserRecord } from '../src/auth/directory.js';
import { verifyDummy, verifyPassword } from '../src/auth/password.js';
import { parseShaCrypt, shaCrypt } from '../src/auth/sha-crypt.js';

const STORED = '{SHA512-CRYPT}$6$2xHtSu1OvXv5HAn1$r6VHA1kMqlUqOCNOFauxeEeY4OpONe2zst.4/FeZgzbyLXHrBTwTsr0h5MqzQkFI47xlw5xs4OsQqATNqlFAh/';
const PASSWORD = 'bench-password';
const concurrent = Number(process.argv[2] ?? 200);
const rounds = Number(process.argv[3] ?? 3);
const allOk = process.argv[4] === 'ok';

const record: UserRecord = { name: 'bench', password: STORED, grants: [] };
const directory = { lookup: async (name: string) => (name === 'bench' ? record : undefined) };

/** The pre-pool path: SHA-crypt computed on this thread (the check and the dummy). */
const inThread = {
  verify: async (stored: string, pw: string): Promise<boolean> => {
    const encoded = stored.replace(/^\{SHA512-CRYPT\}/, '');
    const p = parseShaCrypt(encoded);
    return p !== undefined && (await shaCrypt(p.alg, Buffer.from(pw), p.salt, p.rounds)) === encoded;
  },
  dummy: async (pw: string, kind: 'scrypt' | 'sha512-crypt', cost: number): Promise<boolean> => {
    if (kind === 'sha512-crypt') await shaCrypt('sha512', Buffer.from(pw), 'dummysalt');
    else await verifyDummy(pw, kind, cost);
    return false;
  },
};

async function batch(auth: Authenticator): Promise<void> {
  await Promise.all(
    Array.from({ length: concurrent }, async (_, i) => {
      const kind = allOk ? 0 : i % 4;
      const ok = await auth.login(kind === 3 ? 'nobody' : 'bench', kind === 2 ? `${PASSWORD}x` : PASSWORD);
      if ((ok !== undefined) !== (kind < 2)) throw new Error(`login ${i}: unexpected outcome`);
    }),
  );
}

async function run(label: string, auth: Authenticator): Promise<void> {
  await batch(auth); // warm-up (hashers, workers)
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  // The longest gap between 5 ms ticks: a loop blocked through a whole batch leaves the histogram empty.
  let last = performance.now();
  let stall = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    stall = Math.max(stall, now - last);
    last = now;
  }, 5);
  const t0 = process.cpuUsage();
  const w0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) await batch(auth);
  const wall = Number(process.hrtime.bigint() - w0) / 1e6;
  const cpu = process.cpuUsage(t0);
  h.disable();
  clearInterval(tick);
  stall = Math.max(stall, performance.now() - last);
  const ms = (ns: number): string => (ns / 1e6).toFixed(1);
  const logins = concurrent * rounds;
  console.log(`${label}: ${concurrent} concurrent uncached logins × ${rounds}: ${(wall / rounds).toFixed(0)} ms wall per batch, ` +
    `${((cpu.user + cpu.system) / 1000 / logins).toFixed(2)} ms CPU per login, ${(logins / (wall / 1000)).toFixed(0)} logins/s`);
  console.log(`  longest stall between 5 ms ticks ${stall.toFixed(1)} ms; histogram (${h.count} samples): max ${ms(h.max)} ms, p99 ${ms(h.percentile(99))} ms, p50 ${ms(h.percentile(50))} ms, mean ${ms(h.mean)} ms`);
}

await run('SHA-crypt in-thread', new Authenticator(directory, { scryptCost: 14, ...inThread }));
// The in-thread run never yields a macrotask turn: let the pool's "loaded" messages in first.
await new Promise((r) => setTimeout(r, 300));
await run('SHA-crypt on the pool', new Authenticator(directory, { scryptCost: 14, verify: verifyPassword }));

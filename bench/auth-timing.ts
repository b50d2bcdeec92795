/**
 * `node dist/bench/auth-timing.js [ROUNDS] [SCRYPT_COST]`: how long a failed login takes, over
 * real sockets to an in-process poplar (the test harness, test/helpers/test-server.ts). These
 * are the timing comparisons the tests used to assert; on a shared machine they are noise, so
 * they are measured here and the tests keep what is deterministic (the same reply, the logged
 * `delayMs`/`penaltyMs`, the dummy checks counted in src/auth/authenticator.test.ts).
 *
 * 1. R-S13, hash work alone (failed-login delay off, scrypt at SCRYPT_COST, default 14): the
 *    median time of a failed USER/PASS and AUTH PLAIN for an unknown user over that for a known
 *    user with a wrong secret, for a scrypt user, a locked (`!`) one, a `{SSHA512}` one, and a
 *    scrypt user with a cached success (auth.cache_ttl on). Equal work gives about 1; a missing
 *    dummy check about 0.01.
 * 2. R-X9, the failed-login delay (base 50 ms): the reply time of five successive failures from
 *    one address beside the logged delayMs (each should exceed its delay, and grow with it), and
 *    (base 40 ms) an unknown user's reply time per attempt over a known one's.
 * Prints figures; asserts nothing.
 */
import { Pop3Client } from '../test/helpers/pop3-client.js';
import { withServer, type TestServer, type TestServerOptions } from '../test/helpers/test-server.js';

const rounds = Number(process.argv[2] ?? 9);
const cost = Number(process.argv[3] ?? 14);
const NO_DELAY = { baseMs: 0, maxMs: 0, windowMs: 60_000 };
const plain = (user: string, pw: string): string => Buffer.from(`\0${user}\0${pw}`).toString('base64');

type Attempt = (c: Pop3Client, user: string) => Promise<unknown>;
const PASS: Attempt = async (c, user) => {
  await c.cmd(`USER ${user}`);
  return c.cmd('PASS wrong');
};
const AUTH_PLAIN: Attempt = (c, user) => c.cmd(`AUTH PLAIN ${plain(user, 'wrong')}`);

async function timed(port: number, attempt: Attempt, user: string): Promise<number> {
  const c = await Pop3Client.connect(port);
  try {
    const t0 = process.hrtime.bigint();
    await attempt(c, user);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  } finally {
    c.close();
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (ms: number): string => `${ms.toFixed(1)} ms`;

/** Alternates known and unknown so drifting load hits both alike. */
async function ratio(port: number, attempt: Attempt, known: string, unknown = 'ghost'): Promise<string> {
  const k: number[] = [];
  const u: number[] = [];
  for (let i = 0; i < rounds; i++) {
    k.push(await timed(port, attempt, known));
    u.push(await timed(port, attempt, unknown));
  }
  return `known ${fmt(median(k))}, unknown ${fmt(median(u))}, unknown/known ${(median(u) / median(k)).toFixed(2)}`;
}

async function hashWork(): Promise<void> {
  console.log(`R-S13 failed login, hash work only (scrypt cost ${cost}, ${rounds} rounds, medians):`);
  const records = [
    { name: 'locked', password: '!', grants: [] },
    { name: 'fast', password: '{SSHA512}' + Buffer.alloc(72, 1).toString('base64'), grants: [] },
  ];
  const opts: TestServerOptions = { users: { alice: { password: 'wonderland' } }, records, scryptCost: cost, failureDelay: NO_DELAY };
  await withServer(opts, async (t) => {
    for (const known of ['alice', 'locked', 'fast']) console.log(`  USER/PASS  ${known.padEnd(7)} ${await ratio(t.port, PASS, known)}`);
    console.log(`  AUTH PLAIN alice   ${await ratio(t.port, AUTH_PLAIN, 'alice')}`);
  });
  const cache = { operations: { loginCache: { ttlMs: 3_600_000, maxEntries: 100 } } };
  await withServer({ ...opts, ...cache }, async (t) => {
    const c = await Pop3Client.connect(t.port);
    await c.login('alice', 'wonderland');
    c.close();
    console.log(`  USER/PASS  alice, with a cached success: ${await ratio(t.port, PASS, 'alice')}`);
  });
}

const delays = (t: TestServer): unknown[] => t.logs.filter((l) => l['event'] === 'auth_failed').map((l) => l['delayMs']);

async function failureDelay(): Promise<void> {
  console.log('R-X9 failed-login delay, five failures from one address on fresh connections:');
  await withServer({ failureDelay: { baseMs: 50, maxMs: 10_000, windowMs: 60_000 } }, async (t) => {
    for (let i = 0; i < 5; i++) {
      const ms = await timed(t.port, async (c, user) => {
        await c.cmd(`USER ${user}`);
        return c.cmd(`PASS guess-${i}`);
      }, 'alice');
      console.log(`  attempt ${i + 1}: reply after ${fmt(ms)}, logged delayMs ${String(delays(t).at(-1))}`);
    }
  });
  const per = async (user: string): Promise<number[]> =>
    withServer({ failureDelay: { baseMs: 40, maxMs: 10_000, windowMs: 60_000 } }, async (t) => {
      const times: number[] = [];
      for (let i = 0; i < 4; i++) {
        times.push(await timed(t.port, async (c, u) => {
          await c.cmd(`USER ${u}`);
          return c.cmd(`PASS guess-${i}`);
        }, user));
      }
      return times;
    });
  const known = await per('alice');
  const unknown = await per('ghost');
  console.log(`  unknown/known per attempt (delays 40, 80, 160, 320 ms): ${known.map((k, i) => (unknown[i]! / k).toFixed(2)).join(', ')}`);
}

await hashWork();
await failureDelay();

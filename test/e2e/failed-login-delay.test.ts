/**
 * R-X9's failed-login delay over real sockets: every failed PASS/AUTH waits before its -ERR, the
 * wait doubles per failure from an address across connections, a client repeating the same stale
 * password does not make it grow, and (R-S13) an unknown user waits exactly as a known one.
 * Timings are compared with each other (ordering, ratios), never with absolute budgets; the exact
 * delays are read from the `delayMs` of the auth_failed log lines.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Pop3Client } from '../helpers/pop3-client.js';
import { waitFor, withServer, type TestServer } from '../helpers/test-server.js';
import { startPoplar } from '../helpers/poplar-process.js';

const USERS = { alice: { password: 'wonderland' } };
const plain = (user: string, password: string): string => Buffer.from(`\0${user}\0${password}`, 'utf8').toString('base64');

/** One failed attempt on a fresh connection (as a brute-forcer reconnecting): reply time in ms. */
async function timedFailure(t: TestServer, send: (c: Pop3Client) => Promise<string>): Promise<number> {
  const c = await Pop3Client.connect(t.port);
  try {
    const t0 = process.hrtime.bigint();
    const reply = await send(c);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.equal(reply, '-ERR [AUTH] Authentication failed');
    return ms;
  } finally {
    c.close();
  }
}

async function pass(c: Pop3Client, user: string, password: string): Promise<string> {
  await c.cmd(`USER ${user}`);
  return c.cmd(`PASS ${password}`);
}

const delays = (t: TestServer): unknown[] => t.logs.filter((l) => l['event'] === 'auth_failed').map((l) => l['delayMs']);

describe('R-X9 failed-login delay', () => {
  it('R-X9 brute force: the delay before each -ERR grows with every failure from the address, across connections', async () => {
    await withServer({ users: USERS, failureDelay: { baseMs: 50, maxMs: 10_000, windowMs: 60_000 } }, async (t) => {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) times.push(await timedFailure(t, (c) => pass(c, 'alice', `guess-${i}`)));
      assert.deepEqual(delays(t), [50, 100, 200, 400, 800]);
      for (let i = 1; i < times.length; i++) {
        assert.ok(times[i]! > times[i - 1]!, `reply ${i + 1} (${times[i]!.toFixed(0)} ms) not slower than reply ${i} (${times[i - 1]!.toFixed(0)} ms)`);
      }
      assert.ok(times[4]! > 4 * times[0]!, `5th reply ${times[4]!.toFixed(0)} ms vs 1st ${times[0]!.toFixed(0)} ms: the delay did not grow`);
      // The growth spans user names too (per address): a guess at another user waits longer still.
      const other = await timedFailure(t, (c) => pass(c, 'bob', 'guess'));
      assert.ok(other > times[3]!, `guess for another user took ${other.toFixed(0)} ms`);
      assert.equal(delays(t).at(-1), 1600);
    });
  });

  it('R-X9 a client repeating the same stale password does not make the delay grow (PASS and AUTH PLAIN alike)', async () => {
    await withServer({ users: USERS, failureDelay: { baseMs: 50, maxMs: 10_000, windowMs: 60_000 } }, async (t) => {
      const times: number[] = [];
      for (let i = 0; i < 4; i++) times.push(await timedFailure(t, (c) => pass(c, 'alice', 'old password')));
      times.push(await timedFailure(t, (c) => c.cmd(`AUTH PLAIN ${plain('alice', 'old password')}`)));
      assert.deepEqual(delays(t), [50, 50, 50, 50, 50]);
      const sorted = [...times].sort((a, b) => a - b);
      assert.ok(sorted[4]! < 3 * sorted[0]!, `stale-password replies ${times.map((x) => x.toFixed(0)).join(', ')} ms should stay flat`);
      // A new guess still counts: the delay grows again.
      const guess = await timedFailure(t, (c) => pass(c, 'alice', 'another guess'));
      assert.equal(delays(t).at(-1), 100);
      assert.ok(guess > sorted[0]!, `a fresh guess (${guess.toFixed(0)} ms) waits longer than a stale retry`);
    });
  });

  it('R-S13 R-X9 an unknown user gets the same failed-login delay as a wrong password for a real one', async () => {
    const run = async (user: string): Promise<{ delays: unknown[]; times: number[] }> =>
      withServer({ users: USERS, failureDelay: { baseMs: 40, maxMs: 10_000, windowMs: 60_000 } }, async (t) => {
        const times: number[] = [];
        for (let i = 0; i < 3; i++) times.push(await timedFailure(t, (c) => pass(c, user, `guess-${i}`)));
        times.push(await timedFailure(t, (c) => c.cmd(`AUTH PLAIN ${plain(user, 'guess-x')}`)));
        return { delays: delays(t), times };
      });
    const known = await run('alice');
    const unknown = await run('ghost');
    assert.deepEqual(known.delays, [40, 80, 160, 320]);
    assert.deepEqual(unknown.delays, known.delays);
    for (let i = 0; i < 4; i++) {
      const ratio = unknown.times[i]! / known.times[i]!;
      assert.ok(ratio > 0.5 && ratio < 2, `attempt ${i + 1}: unknown/known ${ratio.toFixed(2)}`);
    }
  });

  it('R-X9 the session reads nothing during the delay: a command pipelined behind a failed PASS is answered after it', async () => {
    await withServer({ users: USERS, failureDelay: { baseMs: 150, maxMs: 1000, windowMs: 60_000 } }, async (t) => {
      const c = await Pop3Client.connect(t.port);
      await c.cmd('USER alice');
      const t0 = process.hrtime.bigint();
      c.write('PASS wrong\r\nNOOP\r\n');
      assert.equal(await c.line(), '-ERR [AUTH] Authentication failed');
      const errAt = Number(process.hrtime.bigint() - t0) / 1e6;
      assert.match(await c.line(), /^-ERR/); // NOOP before login: answered only now, in order
      assert.ok(errAt >= 100, `the -ERR came after ${errAt.toFixed(0)} ms, before the delay`);
      assert.equal(delays(t)[0], 150);
      c.close();
    });
  });

  it('R-X9 a successful login resets the user (its stale passwords too) but not the address', async () => {
    await withServer({ users: USERS, failureDelay: { baseMs: 20, maxMs: 10_000, windowMs: 60_000 } }, async (t) => {
      await timedFailure(t, (c) => pass(c, 'alice', 'typo'));
      await timedFailure(t, (c) => pass(c, 'alice', 'typo')); // stale: no growth
      const c = await Pop3Client.connect(t.port);
      assert.match(await c.login('alice', 'wonderland'), /^\+OK/);
      await c.cmd('QUIT');
      // alice was reset, so 'typo' is a new guess again; the address still remembers its failure.
      await timedFailure(t, (c2) => pass(c2, 'alice', 'typo'));
      assert.deepEqual(delays(t), [20, 20, 40]);
    });
  });

  it('R-X9 a pending failed-login delay does not hold up server shutdown', async () => {
    let closedIn = 0;
    await withServer({ users: USERS, failureDelay: { baseMs: 20_000, maxMs: 20_000, windowMs: 60_000 } }, async (t) => {
      const c = await Pop3Client.connect(t.port);
      await c.cmd('USER alice');
      c.write('PASS wrong\r\n');
      await waitFor(() => delays(t).length === 1);
      const t0 = Date.now();
      await t.server.close();
      closedIn = Date.now() - t0;
      await c.closed();
    });
    assert.ok(closedIn < 10_000, `server.close() took ${closedIn} ms with a 20 s delay pending`);
  });
});

describe('R-X9 in poplar serve', () => {
  it('R-X9 poplar serve applies auth.failure_delay and auth.failure_delay_max', async () => {
    const p = await startPoplar({ overrides: ['auth.failure_delay=60', 'auth.failure_delay_max=100'] });
    try {
      for (let i = 0; i < 3; i++) {
        const c = await Pop3Client.connect(p.pop3Port);
        assert.equal(await pass(c, 'alice', `guess-${i}`), '-ERR [AUTH] Authentication failed');
        c.close();
      }
      assert.deepEqual(p.events('auth_failed').map((e) => e['delayMs']), [60, 100, 100]);
    } finally {
      await p.cleanup();
    }
  });
});

/**
 * R-X9's failed-login delay over real sockets: every failed PASS/AUTH waits before its -ERR, the
 * wait doubles per failure from an address across connections, a client repeating the same stale
 * password does not make it grow, and (R-S13) an unknown user waits exactly as a known one. Every
 * attempt, right or wrong, on any connection, first serves the current penalty before its
 * credential is checked (for every mechanism), so hanging up and reconnecting gains nothing.
 * The exact delays are read from the `penaltyMs` and `delayMs` of the log lines; measured times
 * are only bounded from below by the delay the server must have waited (a reply can come late on
 * a loaded machine, never early). Comparisons of measured times with each other (growth, unknown
 * vs known user) are noise on a shared machine: bench/auth-timing.ts prints them.
 */
import { describe, it } from 'node:test';
import { createHash, createHmac } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { Pop3Client } from '../helpers/pop3-client.js';
import { waitFor, withServer, type TestServer } from '../helpers/test-server.js';
import { startPoplar } from '../helpers/poplar-process.js';
import { testIssuer } from '../helpers/oauth.js';

const USERS = { alice: { password: 'wonderland' } };
const plain = (user: string, password: string): string => Buffer.from(`\0${user}\0${password}`, 'utf8').toString('base64');

/** A timer may fire up to a millisecond early; a reply sooner than its delay by more is a bug. */
const EARLY_MS = 5;

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

const failures = (t: TestServer): Array<Record<string, unknown>> => t.logs.filter((l) => l['event'] === 'auth_failed');
const delays = (t: TestServer): unknown[] => failures(t).map((l) => l['delayMs']);
const penalties = (t: TestServer): unknown[] => failures(t).map((l) => l['penaltyMs']);
/** A `poplar serve` writes its log asynchronously: a line may reach the test after the -ERR did. */
const failuresLogged = (t: TestServer, n: number): Promise<void> => waitFor(() => failures(t).length >= n, 5000, `${n} auth_failed lines`);
const elapsedMs = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

/**
 * A guesser that does not wait for the -ERR: sends a wrong PASS on a fresh connection and hangs
 * up as soon as the server has checked it (its auth_failed line is written).
 */
async function guessAndHangUp(t: TestServer, user: string, password: string): Promise<void> {
  const before = failures(t).length;
  const c = await Pop3Client.connect(t.port);
  await c.cmd(`USER ${user}`);
  c.write(`PASS ${password}\r\n`);
  await waitFor(() => failures(t).length > before);
  c.close();
}

describe('R-X9 failed-login delay', () => {
  it('R-X9 brute force: the delay before each -ERR grows with every failure from the address, across connections', async () => {
    await withServer({ users: USERS, failureDelay: { baseMs: 50, maxMs: 10_000, windowMs: 60_000 } }, async (t) => {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) times.push(await timedFailure(t, (c) => pass(c, 'alice', `guess-${i}`)));
      await failuresLogged(t, 5);
      assert.deepEqual(delays(t), [50, 100, 200, 400, 800]);
      times.forEach((ms, i) => assert.ok(ms >= 50 * 2 ** i - EARLY_MS, `reply ${i + 1} came after ${ms.toFixed(0)} ms, before its ${50 * 2 ** i} ms delay`));
      // The growth spans user names too (per address): a guess at another user waits longer still.
      const other = await timedFailure(t, (c) => pass(c, 'bob', 'guess'));
      await failuresLogged(t, 6);
      assert.equal(delays(t).at(-1), 1600);
      assert.ok(other >= 1600 - EARLY_MS, `the guess for another user came after ${other.toFixed(0)} ms, before its 1600 ms delay`);
    });
  });

  it('R-X9 a client repeating the same stale password does not make the delay grow (PASS and AUTH PLAIN alike)', async () => {
    await withServer({ users: USERS, failureDelay: { baseMs: 50, maxMs: 10_000, windowMs: 60_000 } }, async (t) => {
      const times: number[] = [];
      for (let i = 0; i < 4; i++) times.push(await timedFailure(t, (c) => pass(c, 'alice', 'old password')));
      times.push(await timedFailure(t, (c) => c.cmd(`AUTH PLAIN ${plain('alice', 'old password')}`)));
      await failuresLogged(t, 5);
      assert.deepEqual(delays(t), [50, 50, 50, 50, 50]);
      assert.deepEqual(penalties(t), [0, 50, 50, 50, 50], 'the stale retries did not grow the penalty either');
      times.forEach((ms, i) => assert.ok(ms >= 50 - EARLY_MS, `stale retry ${i + 1} came after ${ms.toFixed(0)} ms, before its 50 ms delay`));
      // A new guess still counts: the delay grows again.
      const guess = await timedFailure(t, (c) => pass(c, 'alice', 'another guess'));
      await failuresLogged(t, 6);
      assert.equal(delays(t).at(-1), 100);
      assert.ok(guess >= 100 - EARLY_MS, `a fresh guess came after ${guess.toFixed(0)} ms, before its 100 ms delay`);
    });
  });

  it('R-S13 R-X9 an unknown user gets the same failed-login delay as a wrong password for a real one', async () => {
    const run = async (user: string): Promise<{ delays: unknown[]; penalties: unknown[]; times: number[] }> =>
      withServer({ users: USERS, failureDelay: { baseMs: 40, maxMs: 10_000, windowMs: 60_000 } }, async (t) => {
        const times: number[] = [];
        for (let i = 0; i < 3; i++) times.push(await timedFailure(t, (c) => pass(c, user, `guess-${i}`)));
        times.push(await timedFailure(t, (c) => c.cmd(`AUTH PLAIN ${plain(user, 'guess-x')}`)));
        await failuresLogged(t, 4);
        return { delays: delays(t), penalties: penalties(t), times };
      });
    const known = await run('alice');
    const unknown = await run('ghost');
    assert.deepEqual(known.delays, [40, 80, 160, 320]);
    assert.deepEqual(unknown.delays, known.delays);
    assert.deepEqual(known.penalties, [0, 40, 80, 160], 'each attempt served the penalty of the failures before it');
    assert.deepEqual(unknown.penalties, known.penalties);
    for (const r of [known, unknown]) {
      r.times.forEach((ms, i) => assert.ok(ms >= 40 * 2 ** i - EARLY_MS, `attempt ${i + 1} came after ${ms.toFixed(0)} ms, before its delay`));
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
      await failuresLogged(t, 1);
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
      await failuresLogged(t, 3);
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
      await t.stop();
      closedIn = Date.now() - t0;
      await c.closed();
    });
    assert.ok(closedIn < 10_000, `server.close() took ${closedIn} ms with a 20 s delay pending`);
  });
});

describe('R-X9 the penalty is served before the credential is checked', () => {
  it('R-X9 regression: the right password on a new connection after failures was answered at once; now it waits the penalty first (USER/PASS)', async () => {
    await withServer({ users: USERS, failureDelay: { baseMs: 400, maxMs: 10_000, windowMs: 60_000 } }, async (t) => {
      await guessAndHangUp(t, 'alice', 'guess-1');
      await guessAndHangUp(t, 'alice', 'guess-2');
      const penalty = 800; // two counted failures: base, then doubled
      const c = await Pop3Client.connect(t.port);
      await c.cmd('USER alice');
      const t0 = process.hrtime.bigint();
      assert.match(await c.cmd('PASS wonderland'), /^\+OK/);
      const ms = elapsedMs(t0);
      assert.ok(ms >= penalty - 50, `+OK after ${ms.toFixed(0)} ms, before the ${penalty} ms penalty had passed`);
      await c.cmd('QUIT');
      await waitFor(() => t.logs.some((l) => l['event'] === 'login'), 5000, 'the login line');
      assert.equal(t.logs.find((l) => l['event'] === 'login')?.['penaltyMs'], penalty);
    });
  });

  it('R-X9 regression: a guesser hanging up and reconnecting guessed at full speed; now each guess on a new connection is checked only after the grown penalty, hang-up during the wait or not', async () => {
    await withServer({ users: USERS, failureDelay: { baseMs: 300, maxMs: 10_000, windowMs: 60_000 } }, async (t) => {
      await guessAndHangUp(t, 'alice', 'guess-1');
      await guessAndHangUp(t, 'alice', 'guess-2');
      // Attempt 3 on a new connection: the server reaches its verdict no sooner than 600 ms after it.
      const c = await Pop3Client.connect(t.port);
      await c.cmd('USER alice');
      const t0 = process.hrtime.bigint();
      c.write('PASS guess-3\r\n');
      await waitFor(() => failures(t).length === 3);
      const ms = elapsedMs(t0);
      c.close();
      assert.ok(ms >= 550, `guess 3 was checked ${ms.toFixed(0)} ms after it arrived, before the 600 ms penalty`);
      assert.deepEqual(penalties(t), [0, 300, 600]);
      // Attempt 4 hangs up 100 ms into its wait; attempt 5, on a new connection for another name,
      // still serves the address's penalty (1200 ms now) before its check: the hang-up bought nothing.
      const d = await Pop3Client.connect(t.port);
      await d.cmd('USER alice');
      d.write('PASS guess-4\r\n');
      await sleep(100);
      d.close();
      const e = await Pop3Client.connect(t.port);
      await e.cmd('USER bob');
      const t1 = process.hrtime.bigint();
      e.write('PASS guess-5\r\n');
      await waitFor(() => failures(t).some((l) => l['user'] === 'bob'));
      const ms5 = elapsedMs(t1);
      e.close();
      assert.ok(ms5 >= 1150, `guess 5 was checked ${ms5.toFixed(0)} ms after it arrived, before the 1200 ms penalty`);
      // 1200, or 2400 if the abandoned guess 4 was checked and counted first (it is, after its wait).
      assert.ok(Number(failures(t).find((l) => l['user'] === 'bob')?.['penaltyMs']) >= 1200);
    });
  });

  it('R-X9 regression: PLAIN, LOGIN, CRAM-MD5, OAUTHBEARER and APOP answered a right credential at once from a penalised address; now each waits the penalty', async () => {
    const issuer = await testIssuer();
    const settings = { apop: true, mechanisms: ['PLAIN', 'LOGIN', 'CRAM-MD5', 'OAUTHBEARER'] };
    await withServer({ users: USERS, settings, tokens: issuer.verifier, failureDelay: { baseMs: 200, maxMs: 10_000, windowMs: 60_000 } }, async (t) => {
      // Failures for another (unknown) name: the address's penalty, 400 ms, is what alice's logins wait.
      await guessAndHangUp(t, 'mallory', 'guess-1');
      await guessAndHangUp(t, 'mallory', 'guess-2');
      const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
      const token = await issuer.token('alice');
      const logins: Record<string, (c: Pop3Client) => Promise<string>> = {
        PLAIN: (c) => c.cmd(`AUTH PLAIN ${plain('alice', 'wonderland')}`),
        LOGIN: async (c) => {
          await c.cmd('AUTH LOGIN');
          await c.cmd(b64('alice'));
          return c.cmd(b64('wonderland'));
        },
        'CRAM-MD5': async (c) => {
          const challenge = Buffer.from((await c.cmd('AUTH CRAM-MD5')).slice(2), 'base64').toString('latin1');
          return c.cmd(b64(`alice ${createHmac('md5', 'wonderland').update(challenge).digest('hex')}`));
        },
        OAUTHBEARER: (c) => c.cmd(`AUTH OAUTHBEARER ${b64(`n,a=alice,\x01auth=Bearer ${token}\x01\x01`)}`),
        APOP: async (c) => {
          const banner = /<[^>]+>/.exec(await c.greeting)![0];
          return c.cmd(`APOP alice ${createHash('md5').update(banner + 'wonderland').digest('hex')}`);
        },
      };
      for (const [mechanism, login] of Object.entries(logins)) {
        const c = await Pop3Client.connect(t.port);
        const t0 = process.hrtime.bigint();
        assert.match(await login(c), /^\+OK alice/, mechanism);
        const ms = elapsedMs(t0);
        assert.ok(ms >= 350, `${mechanism}: +OK after ${ms.toFixed(0)} ms, before the 400 ms penalty had passed`);
        await c.cmd('QUIT');
      }
      // A worker process's log lines reach the test through a pipe: wait for all five.
      const loginLines = (): Array<Record<string, unknown>> => t.logs.filter((l) => l['event'] === 'login');
      await waitFor(() => loginLines().length >= Object.keys(logins).length);
      const logged = loginLines().map((l) => [l['mechanism'], l['penaltyMs']]);
      assert.deepEqual(logged, Object.keys(logins).map((m) => [m, 400]));
    });
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
      assert.deepEqual((await p.logged('auth_failed', 3)).map((e) => e['delayMs']), [60, 100, 100]);
    } finally {
      await p.cleanup();
    }
  });
});

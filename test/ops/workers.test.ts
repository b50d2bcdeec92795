/**
 * R-X16: `poplar serve` with `server.workers = 2`, real processes and sockets. Every limit holds
 * across the workers as in one process (the primary's shared state), and operations stay whole:
 * a killed worker is replaced without touching the other's sessions, reload and drain reach both.
 *
 * Which worker serves a connection is the kernel's choice; the APOP banner of the greeting
 * (`<pid.clock@host>`) names the worker's pid, so each test can see that both workers took part,
 * and `connectTo` (helpers/workers.ts) reaches a chosen one.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { firstAnswer, Pop3Client } from '../helpers/pop3-client.js';
import { startPoplar, type PoplarProcess } from '../helpers/poplar-process.js';
import { waitFor } from '../helpers/wait.js';
import { lmtpOnce } from '../helpers/lmtp-loop.js';
import { connectTo, pidOf, workerPids } from '../helpers/workers.js';

const APOP = 'auth.apop=true';

async function withWorkers(opts: Parameters<typeof startPoplar>[0], fn: (p: PoplarProcess) => Promise<void>): Promise<void> {
  const p = await startPoplar({ workers: 2, ...opts, overrides: [APOP, ...(opts?.overrides ?? [])] });
  try {
    await fn(p);
  } finally {
    await p.cleanup();
  }
}

/** One LMTP delivery to alice on its own connection; the reply that decided it. */
const lmtpDeliver = (port: number, subject: string): Promise<string> => lmtpOnce(port, `Subject: ${subject}\r\n\r\nbody\r\n`);

describe('R-X16 limits across workers', { timeout: 120_000 }, () => {
  it('R-X16 60 connections from one address with max_connections_per_ip = 50 over 2 workers: exactly 50 greeted', async () => {
    await withWorkers({ overrides: ['pop3.max_connections_per_ip=50'] }, async (p) => {
      // 30 on each worker: the other is paused meanwhile. Left to the kernel, one worker under load
      // could take all 60 and prove nothing across workers.
      const [one, two] = workerPids(p);
      const whilePaused = async (paused: number): Promise<Pop3Client[]> => {
        process.kill(paused, 'SIGSTOP');
        try {
          const batch = await Promise.all(Array.from({ length: 30 }, () => Pop3Client.connect(p.pop3Port)));
          await Promise.all(batch.map((c) => c.greeting));
          return batch;
        } finally {
          process.kill(paused, 'SIGCONT');
        }
      };
      const clients = [...(await whilePaused(two!)), ...(await whilePaused(one!))];
      const greetings = await Promise.all(clients.map((c) => c.greeting));
      const ok = greetings.filter((g) => g.startsWith('+OK'));
      assert.equal(ok.length, 50, `greeted: ${ok.length}`);
      assert.equal(greetings.filter((g) => g.startsWith('-ERR [SYS/TEMP]')).length, 10);
      assert.equal(new Set(ok.map(pidOf)).size, 2, 'both workers greeted some');
      for (const c of clients) c.close();
      // Given back: once they are closed, 50 more are greeted.
      await waitFor(() => p.events('session_end').length >= 50, 10_000);
      await sleep(300); // the workers' releases reach the primary
      const again = await Promise.all(Array.from({ length: 50 }, () => Pop3Client.connect(p.pop3Port)));
      assert.ok((await Promise.all(again.map((c) => c.greeting))).every((g) => g.startsWith('+OK')));
      for (const c of again) c.close();
    });
  });

  it('R-X16 the per-user cap counts the sessions of both workers', async () => {
    await withWorkers({ overrides: ['pop3.max_connections_per_user=2'] }, async (p) => {
      const first = await Pop3Client.connect(p.pop3Port);
      const firstPid = pidOf(await first.greeting);
      assert.match(await first.login('alice', 'wonderland'), /^\+OK/);
      const other = await connectTo(p, (pid) => pid !== firstPid);
      assert.match(await other.c.login('alice', 'wonderland'), /^\+OK/, 'second session, other worker');
      for (const want of [firstPid, other.pid]) {
        const third = await connectTo(p, (pid) => pid === want);
        assert.match(await third.c.login('alice', 'wonderland'), /^-ERR \[IN-USE\]/, `third session refused on worker ${want}`);
        third.c.close();
      }
      assert.match(await first.cmd('QUIT'), /^\+OK/);
      await first.closed();
      await waitFor(() => p.events('session_end').some((e) => e['user'] === 'alice'), 5_000);
      await sleep(300); // the worker's release reaches the primary
      const freed = await connectTo(p, (pid) => pid === other.pid);
      assert.match(await freed.c.login('alice', 'wonderland'), /^\+OK/, 'the slot given back on one worker is free on the other');
      freed.c.close();
      other.c.close();
    });
  });

  it('R-X16 a failed login on one worker delays the next try on the other', async () => {
    await withWorkers({ overrides: ['auth.failure_delay=400', 'auth.failure_delay_max=400'] }, async (p) => {
      const a = await Pop3Client.connect(p.pop3Port);
      const pidA = pidOf(await a.greeting);
      assert.match(await a.login('alice', 'wrong'), /^-ERR \[AUTH\]/);
      a.close();
      const b = await connectTo(p, (pid) => pid !== pidA);
      const t0 = Date.now();
      assert.match(await b.c.login('alice', 'wonderland'), /^\+OK/);
      assert.ok(Date.now() - t0 >= 350, `the other worker served the penalty (${Date.now() - t0} ms)`);
      b.c.close();
      await waitFor(() => p.events('login').length > 0, 5_000);
      const login = p.events('login')[0]!;
      assert.ok(Number(login['penaltyMs']) >= 400, JSON.stringify(login));
    });
  });

  it('R-X16 a login verified by one worker is let in from the cache by the other, not verified again', async () => {
    await withWorkers({ overrides: ['auth.cache_ttl=600'] }, async (p) => {
      const a = await Pop3Client.connect(p.pop3Port);
      const pidA = pidOf(await a.greeting);
      assert.match(await a.login('alice', 'wonderland'), /^\+OK/);
      assert.match(await a.cmd('QUIT'), /^\+OK/);
      const b = await connectTo(p, (pid) => pid !== pidA);
      assert.match(await b.c.login('alice', 'wonderland'), /^\+OK/);
      b.c.close();
      await waitFor(() => p.events('login').length >= 2, 5_000);
      const [first, second] = p.events('login');
      assert.equal(first!['cached'], undefined, 'the first login ran the scheme');
      assert.notEqual(first!['worker'], second!['worker']);
      assert.equal(second!['cached'], true, 'the other worker let it in from the shared cache');
    });
  });

  it('R-X16 [IN-USE]: an exclusive session on one worker locks the maildrop for the other', async () => {
    await withWorkers({ overrides: ['pop3.lock_mode=exclusive'] }, async (p) => {
      const a = await Pop3Client.connect(p.pop3Port);
      const pidA = pidOf(await a.greeting);
      assert.match(await a.login('alice', 'wonderland'), /^\+OK/);
      const b = await connectTo(p, (pid) => pid !== pidA);
      assert.match(await b.c.login('alice', 'wonderland'), /^-ERR \[IN-USE\]/);
      assert.match(await a.cmd('QUIT'), /^\+OK/);
      await a.closed();
      const c = await connectTo(p, (pid) => pid !== pidA);
      assert.match(await c.c.login('alice', 'wonderland'), /^\+OK/, 'free again once the holder quit');
      b.c.close();
      c.c.close();
    });
  });

  it('R-X16 LOGIN-DELAY: a login on one worker is seen by the next login on the other, which knew an older one', async () => {
    await withWorkers({ overrides: ['policy.login_delay=3'] }, async (p) => {
      const b = await Pop3Client.connect(p.pop3Port);
      const pidB = pidOf(await b.greeting);
      assert.match(await b.login('alice', 'wonderland'), /^\+OK/, 'worker B now holds the record of this login');
      assert.match(await b.cmd('QUIT'), /^\+OK/);
      await sleep(3_300);
      const a = await connectTo(p, (pid) => pid !== pidB);
      assert.match(await a.c.login('alice', 'wonderland'), /^\+OK/, 'the delay since the first login has passed');
      assert.match(await a.c.cmd('QUIT'), /^\+OK/);
      const again = await connectTo(p, (pid) => pid === pidB);
      assert.match(await again.c.login('alice', 'wonderland'), /^-ERR \[LOGIN-DELAY\]/, 'worker B saw the login on worker A');
      again.c.close();
    });
  });

  it('R-X16 shared state that does not answer: -ERR [SYS/TEMP], never admitted; answering again, service resumes', async () => {
    await withWorkers({ env: { POPLAR_TEST_HOOKS: '1' } }, async (p) => {
      p.child.kill('SIGUSR2');
      await waitFor(() => p.events('shared_state_stalled').length === 1, 5_000);
      const c = await Pop3Client.connect(p.pop3Port);
      assert.match(await c.greeting, /^-ERR \[SYS\/TEMP\]/);
      await c.closed();
      p.child.kill('SIGUSR2');
      await waitFor(() => p.events('shared_state_stalled').length === 2, 5_000);
      const d = await Pop3Client.connect(p.pop3Port);
      assert.match(await d.login('alice', 'wonderland'), /^\+OK/);
      d.close();
    });
  });
});

describe('R-X16 Maildir across workers', { timeout: 120_000 }, () => {
  it('R-X16 a delivery by LMTP on any worker is visible at the next login on every worker, past each worker\'s cached listing', async () => {
    await withWorkers({}, async (p) => {
      const pids = workerPids(p);
      const deliverers = (): Set<unknown> => new Set(p.events('delivered').map((e) => e['worker']));
      /** A login on each worker; each must list `n` messages. */
      const loginEverywhere = async (n: number, when: string): Promise<void> => {
        for (const pid of pids) {
          const { c } = await connectTo(p, (x) => x === pid);
          assert.match(await c.login('alice', 'wonderland'), new RegExp(`^\\+OK alice has ${n} messages? `), `worker ${pid} ${when}`);
          assert.match(await c.cmd('QUIT'), /^\+OK/);
          await c.closed();
        }
      };
      // Each round: both workers list the maildrop while it is quiet (past the 100 ms dirty
      // window, maildir-listing.ts), so each keeps a trusted listing; then one delivery (or four
      // at once, so the kernel spreads them); then the login on each worker must see it, i.e. its
      // cached listing must be found stale. Regression: a check of new/ (or cur/, or the uidlist)
      // that was skipped or always passed left a worker serving its old listing, and the previous
      // version of this test never let a listing settle, so it passed anyway.
      let n = 0;
      for (let round = 0; round < 10 && (round < 4 || deliverers().size < 2); round++) {
        for (let settle = 0; settle < 2; settle++) {
          await sleep(250);
          await loginEverywhere(n, `settling after ${n} deliveries`);
        }
        const batch = round < 4 ? 1 : 4;
        const replies = await Promise.all(Array.from({ length: batch }, (_, i) => lmtpDeliver(p.lmtpPort, `m${n + i + 1}`)));
        for (const r of replies) assert.match(r, /^250 /);
        n += batch;
        await loginEverywhere(n, `right after delivery ${n}`);
        await p.logged('delivered', n); // every line in before deliverers() reads them
      }
      assert.equal(deliverers().size, 2, 'both workers delivered');
    });
  });
});

describe('R-X16 operations with workers', { timeout: 120_000 }, () => {
  it('R-X16 a worker SIGKILLed mid-session: its sessions drop, nothing is deleted, the other worker goes on, a new worker takes connections', async () => {
    await withWorkers({ overrides: ['pop3.max_connections_per_user=2'] }, async (p) => {
      for (let i = 0; i < 3; i++) assert.equal((await p.cli(['deliver', '--user', 'alice'], `Subject: ${i}\r\n\r\nbody ${i}\r\n`)).code, 0);
      const a = await Pop3Client.connect(p.pop3Port);
      const pidA = pidOf(await a.greeting);
      assert.match(await a.login('alice', 'wonderland'), /^\+OK alice has 3 messages/);
      assert.match(await a.cmd('DELE 1'), /^\+OK/);
      const b = await connectTo(p, (pid) => pid !== pidA);
      assert.match(await b.c.login('alice', 'wonderland'), /^\+OK/);
      process.kill(pidA, 'SIGKILL');
      await a.closed(10_000);
      await waitFor(() => p.events('worker_exit').length === 1, 10_000);
      const exit = p.events('worker_exit')[0]!;
      assert.equal(exit['signal'], 'SIGKILL');
      assert.deepEqual(exit['released'], { connections: 1, users: 1, claims: 0 });
      assert.match(await b.c.cmd('STAT'), /^\+OK 3 /, 'the other worker\'s session goes on');
      await waitFor(() => workerPids(p).length === 3, 30_000);
      const fresh = workerPids(p).find((pid) => pid !== pidA && pid !== b.pid)!;
      const c = await connectTo(p, (pid) => pid === fresh);
      assert.match(await c.c.login('alice', 'wonderland'), /^\+OK alice has 3 messages/, 'nothing deleted; the killed session\'s user slot is free');
      assert.match(await c.c.cmd('QUIT'), /^\+OK/);
      assert.match(await b.c.cmd('QUIT'), /^\+OK/);
    });
  });

  it('R-X16 reload with 2 workers: a changed reloadable setting takes effect on both', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'poplar-wreload-'));
    const config = join(dir, 'poplar.toml');
    await writeFile(config, '[pop3]\ngreeting = "before"\n');
    after(() => rm(dir, { recursive: true, force: true }));
    await withWorkers({ configFile: config }, async (p) => {
      await writeFile(config, '[pop3]\ngreeting = "after the reload"\n');
      const r = await p.cli(['reload']);
      assert.equal(r.code, 0, r.stderr);
      const seen = new Map<number, string>();
      for (let i = 0; i < 40 && seen.size < 2; i++) {
        const c = await Pop3Client.connect(p.pop3Port);
        const g = await c.greeting;
        seen.set(pidOf(g), g);
        c.close();
      }
      assert.equal(seen.size, 2, 'both workers answered');
      for (const g of seen.values()) assert.match(g, /^\+OK after the reload </);
    });
  });

  it('R-X13 R-X16 a stop closes every worker\'s listening socket before any drains: a worker slow to take it holds back the others\' -ERR', async () => {
    await withWorkers({}, async (p) => {
      const idle = await Pop3Client.connect(p.pop3Port);
      const idlePid = pidOf(await idle.greeting);
      const slow = workerPids(p).find((pid) => pid !== idlePid)!;
      // When the line arrives, not when the test reads it.
      const erred = idle.line().then((line) => ({ line, at: Date.now() }));
      let resumedAt = 0;
      process.kill(slow, 'SIGSTOP');
      try {
        p.child.kill('SIGTERM');
        await p.logged('shutdown'); // the primary's
        await sleep(300); // time for the idle session's worker to drain, were it not held back
        resumedAt = Date.now();
      } finally {
        process.kill(slow, 'SIGCONT');
      }
      const { line, at } = await erred;
      assert.equal(line, '-ERR [SYS/TEMP] Server shutting down, try again later');
      assert.ok(at >= resumedAt, `the idle session was told to go ${resumedAt - at} ms before the slow worker had closed its socket`);
      // From then on no worker greets a connection.
      const first = await firstAnswer(p.pop3Port);
      assert.ok(['ECONNREFUSED', 'ECONNRESET', '-ERR [SYS/TEMP] Server shutting down, try again later'].includes(first), `a connection after the -ERR got ${first}`);
    });
  });

  it('R-X16 drain with 2 workers: SIGTERM lets sessions on both finish until the deadline, then the primary exits 0', async () => {
    await withWorkers({ overrides: ['server.shutdown_timeout=3'], users: { alice: 'wonderland', bob: 'builder' } }, async (p) => {
      assert.equal((await p.cli(['deliver', '--user', 'alice'], 'Subject: x\r\n\r\nbody\r\n')).code, 0);
      assert.equal((await p.cli(['deliver', '--user', 'bob'], 'Subject: y\r\n\r\nbody\r\n')).code, 0);
      const a = await Pop3Client.connect(p.pop3Port);
      const pidA = pidOf(await a.greeting);
      assert.match(await a.login('alice', 'wonderland'), /^\+OK/);
      const b = await connectTo(p, (pid) => pid !== pidA);
      assert.match(await b.c.login('bob', 'builder'), /^\+OK/);
      const exited = new Promise<number | null>((resolve) => p.child.once('exit', (code) => resolve(code)));
      p.child.kill('SIGTERM');
      await waitFor(() => p.events('shutdown').length >= 3, 5_000);
      assert.match(await a.cmd('DELE 1'), /^\+OK/, 'a session goes on during the drain');
      assert.match(await a.cmd('QUIT'), /^\+OK/);
      await b.c.closed(10_000); // cut at the deadline: no UPDATE
      assert.equal(await exited, 0);
      const restarted = await startPoplar({ workers: 1, dataDir: p.dataDir, users: {} });
      try {
        const c = await Pop3Client.connect(restarted.pop3Port);
        await c.greeting;
        assert.match(await c.login('alice', 'wonderland'), /^\+OK alice has 0 messages/, 'the finished session\'s DELE was applied');
        c.close();
      } finally {
        await restarted.stop();
      }
    });
  });
});

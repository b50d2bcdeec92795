/**
 * R-X21 with R-X16: a real `poplar serve` with `server.workers = 2` and `admin.listen`. The primary
 * serves the admin API and asks both workers (src/admin/across-workers.ts): the session list
 * holds every worker's sessions (each with its worker, as the log lines say), ending a session
 * reaches the worker that holds it, failed logins made on either worker appear with the penalty of
 * the shared counters, deliveries are summed over the workers, and a worker that does not answer
 * in time leaves a `partial: true` answer (503 when none answers).
 *
 * Which worker serves a connection is the kernel's choice; the APOP banner of the greeting
 * (`<pid.clock@host>`) names the worker's pid, and `worker_ready` maps pids to worker ids.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { poplar } from '../cli/run.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { startPoplar, type PoplarProcess } from '../helpers/poplar-process.js';
import { waitFor } from '../helpers/wait.js';
import { lmtpOnce } from '../helpers/lmtp-loop.js';

const USERS = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`u${i + 1}`, `pass-${i + 1}`]));

interface Held {
  readonly c: Pop3Client;
  readonly worker: number;
}

interface SessionItem {
  id: string;
  user: string | null;
  state: string;
  worker?: number;
}

describe('R-X21 R-X16 the admin API of a server with 2 workers', { timeout: 180_000 }, () => {
  let p: PoplarProcess;
  let url: string;
  let token: string;
  const open: Pop3Client[] = [];
  before(async () => {
    p = await startPoplar({
      workers: 2,
      users: { alice: 'wonderland', ...USERS },
      overrides: ['admin.listen=127.0.0.1:0', 'auth.apop=true', 'auth.failure_delay=100', 'auth.failure_delay_max=400'],
    });
    await waitFor(() => p.events('listening').some((e) => e['protocol'] === 'http'), 10_000, 'admin listening');
    const admin = p.events('listening').find((e) => e['protocol'] === 'http')!;
    assert.equal(admin['worker'], 'primary', 'the primary serves the admin listener');
    url = `http://127.0.0.1:${String(admin['port'])}`;
    const run = await p.cli(['admin', 'token']);
    assert.equal(run.code, 0, run.stderr);
    token = run.stdout.trim();
  });
  after(async () => {
    for (const c of open) c.close();
    await p.cleanup();
  });

  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const r = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await r.text();
    return { status: r.status, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
  };
  const sessions = async (): Promise<{ items: SessionItem[]; partial?: boolean }> => {
    const r = await call('GET', '/api/v1/sessions?limit=500');
    assert.equal(r.status, 200, JSON.stringify(r.json));
    return r.json as unknown as { items: SessionItem[]; partial?: boolean };
  };
  const workerOfPid = (pid: number): number => {
    const ready = p.events('worker_ready').filter((e) => e['pid'] === pid);
    return Number(ready[ready.length - 1]?.['workerId'] ?? 0);
  };
  const pidOfWorker = (worker: number): number => Number(p.events('worker_ready').find((e) => e['workerId'] === worker)!['pid']);
  const workerIds = (): number[] => [...new Set(p.events('worker_ready').map((e) => Number(e['workerId'])))];

  /** Opens connections (all kept open) until each worker holds at least `each` of them. */
  async function spread(each: number): Promise<Held[]> {
    const held: Held[] = [];
    for (let i = 0; i < 80; i++) {
      const c = await Pop3Client.connect(p.pop3Port);
      open.push(c);
      const worker = workerOfPid(Number(/<(\d+)\./.exec(await c.greeting)?.[1] ?? 0));
      held.push({ c, worker });
      const counts = workerIds().map((w) => held.filter((h) => h.worker === w).length);
      if (counts.length === 2 && counts.every((n) => n >= each)) return held;
    }
    throw new Error('the connections did not reach both workers');
  }

  /** One LMTP delivery to alice on its own connection; the reply that decided it. */
  const lmtpDeliver = (subject: string): Promise<string> => lmtpOnce(p.lmtpPort, `Subject: ${subject}\r\n\r\nbody\r\n`);

  let held: Held[] = [];
  const logged: Array<Held & { user: string }> = [];
  const sessionOf = (user: string): string => String(p.events('login').find((e) => e['user'] === user)!['session']);

  it('R-X21 R-X16 GET /api/v1/sessions lists the sessions of both workers, each with the worker its log lines name', async () => {
    held = await spread(3);
    const ids = workerIds();
    for (const h of ids.flatMap((w) => held.filter((x) => x.worker === w).slice(0, 3))) {
      const user = `u${logged.length + 1}`;
      assert.match(await h.c.login(user, USERS[user]!), /^\+OK/);
      logged.push({ ...h, user });
    }
    await waitFor(() => p.events('login').length >= logged.length, 5_000, 'login lines');
    const { items, partial } = await sessions();
    assert.equal(partial, undefined);
    assert.equal(items.length, held.length, 'every open connection is listed, from both workers');
    for (const login of p.events('login')) {
      const item = items.find((s) => s.id === login['session']);
      assert.ok(item !== undefined, `session ${String(login['session'])} of ${String(login['user'])} is listed`);
      assert.equal(item.worker, login['worker'], 'the worker the log line names');
      assert.equal(item.user, login['user']);
      assert.equal(item.state, 'transaction');
      assert.ok(item.id.startsWith(`${item.worker}-`), 'a session id starts with its worker id');
    }
    assert.deepEqual(new Set(items.map((s) => s.worker)), new Set(ids));
  });

  it('R-X21 R-X16 DELETE /api/v1/sessions/{id} ends a session held by either worker; that client is disconnected, the others go on', async () => {
    for (const w of workerIds()) {
      const [target, ...others] = logged.filter((h) => h.worker === w);
      const id = sessionOf(target!.user);
      const r = await call('DELETE', `/api/v1/sessions/${id}`);
      assert.equal(r.status, 204, JSON.stringify(r.json));
      await target!.c.closed();
      assert.ok(!(await sessions()).items.some((s) => s.id === id), 'the session is gone from the list');
      for (const o of others) assert.equal(await o.c.cmd('NOOP'), '+OK', `${o.user} on worker ${w} goes on`);
    }
    assert.equal((await call('DELETE', '/api/v1/sessions/9999-abc0')).status, 404, 'no such worker');
    assert.equal((await call('DELETE', '/api/v1/sessions/abc0')).status, 404, 'no worker makes this id');
  });

  it('R-X21 R-X16 a user added through the API of the primary logs in on both workers (within the one-second re-stat of the users file)', async () => {
    const r = await call('POST', '/api/v1/users', { name: 'viaapi', password: 'api-pass' });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    // The primary wrote the users file; a worker's PasswdFile re-stats it at most every second.
    await sleep(1100);
    const two = await spread(1);
    for (const w of workerIds()) {
      const h = two.filter((x) => x.worker === w).at(-1)!;
      assert.match(await h.c.login('viaapi', 'api-pass'), /^\+OK/, `login on worker ${w}`);
      await h.c.cmd('QUIT');
    }
  });

  it('R-X21 R-X16 failed logins made on both workers appear in /api/v1/failed-logins and by address and user, with the shared penalty', async () => {
    const fresh = await spread(1);
    for (const w of workerIds()) {
      const h = fresh.filter((x) => x.worker === w).at(-1)!;
      assert.match(await h.c.cmd(`USER ghost-${w}`), /^\+OK/);
      assert.match(await h.c.cmd('PASS wrong'), /^-ERR/);
    }
    const list = await call('GET', '/api/v1/failed-logins');
    assert.equal(list.status, 200);
    const items = list.json['items'] as Array<{ at: string; address: string; user: string | null }>;
    for (const w of workerIds()) assert.ok(items.some((f) => f.user === `ghost-${w}` && f.address === '127.0.0.1'), `the failure on worker ${w}`);
    const ats = items.map((f) => f.at);
    assert.deepEqual(ats, [...ats].sort().reverse(), 'newest first');
    const byUser = (await call('GET', '/api/v1/failed-logins/by-user')).json['items'] as Array<Record<string, unknown>>;
    for (const w of workerIds()) {
      const g = byUser.find((o) => o['key'] === `ghost-${w}`);
      assert.ok(g !== undefined, `ghost-${w} grouped`);
      assert.equal(g['recentFailures'], 1);
      assert.equal(g['failures'], 1);
      assert.ok(Number(g['penaltyMs']) > 0, 'the user has a penalty in the shared counters');
    }
    const byAddress = (await call('GET', '/api/v1/failed-logins/by-address')).json['items'] as Array<Record<string, unknown>>;
    const local = byAddress.find((o) => o['key'] === '127.0.0.1')!;
    assert.equal(local['recentFailures'], 2, 'one failure from each worker');
    assert.equal(local['failures'], 2);
    assert.ok(Number(local['penaltyMs']) >= 200, `two failures from the address double the delay (${String(local['penaltyMs'])} ms)`);
  });

  it('R-X21 R-X16 LMTP deliveries taken by both workers are summed in /api/v1/deliveries and /api/v1/stats/history', async () => {
    const delivered = (): Array<Record<string, unknown>> => p.events('delivered');
    let sent = 0;
    for (let round = 0; round < 20 && new Set(delivered().map((e) => e['worker'])).size < 2; round++) {
      const replies = round < 2 ? [await lmtpDeliver(`single ${round}`)] : await Promise.all([0, 1, 2, 3].map((i) => lmtpDeliver(`round ${round}.${i}`)));
      for (const r of replies) assert.match(r, /^250 /);
      sent += replies.length;
      // Every delivery's line, not just one: the count below is compared with the API's totals.
      await p.logged('delivered', sent);
    }
    assert.equal(new Set(delivered().map((e) => e['worker'])).size, 2, 'both workers delivered');
    const n = delivered().length;
    const totals = await call('GET', '/api/v1/deliveries');
    assert.equal(totals.status, 200);
    assert.equal(totals.json['delivered'], n, 'every worker\'s deliveries counted');
    assert.equal(totals.json['partial'], undefined);
    const history = await call('GET', '/api/v1/stats/history');
    const series = history.json['series'] as Record<string, number[]>;
    assert.equal(series['deliveries']!.reduce((a, b) => a + b, 0), n);
    assert.equal(series['failedLogins']!.reduce((a, b) => a + b, 0), 2, 'the failed logins of both workers');
    assert.ok(series['logins']!.reduce((a, b) => a + b, 0) >= 8, 'the logins of both workers');
  });

  it('R-X21 R-X16 a worker that does not answer in time: the reads answer partial: true without it, ending its session is 503; none answering is 503', async () => {
    const [stopped, other] = workerIds();
    const pid = pidOfWorker(stopped!);
    // A logged-in client of that worker that is still connected (the first of each was ended above).
    const client = logged.filter((h) => h.worker === stopped)[1]!;
    const ofStopped = { id: sessionOf(client.user) };
    process.kill(pid, 'SIGSTOP');
    try {
      const partial = await sessions();
      assert.equal(partial.partial, true);
      assert.ok(partial.items.length > 0 && partial.items.every((s) => s.worker === other), 'the other worker\'s sessions');
      const end = await call('DELETE', `/api/v1/sessions/${ofStopped.id}`);
      assert.equal(end.status, 503);
      assert.equal((end.json['error'] as Record<string, unknown>)['code'], 'UNAVAILABLE');
      const totals = await call('GET', '/api/v1/deliveries');
      assert.equal(totals.status, 200);
      assert.equal(totals.json['partial'], true);
      assert.equal(totals.json['delivered'], p.events('delivered').filter((e) => e['worker'] === other).length);
      assert.equal((await call('GET', '/api/v1/failed-logins')).json['partial'], true);
      process.kill(pidOfWorker(other!), 'SIGSTOP');
      try {
        const none = await call('GET', '/api/v1/sessions');
        assert.equal(none.status, 503);
        assert.equal((none.json['error'] as Record<string, unknown>)['code'], 'UNAVAILABLE');
      } finally {
        process.kill(pidOfWorker(other!), 'SIGCONT');
      }
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // The worker answers its requests in order: this answer comes after it read the late end-session.
    const whole = await sessions();
    assert.equal(whole.partial, undefined);
    assert.ok(whole.items.some((s) => s.id === ofStopped.id), 'the session the 503 did not end is there');
    assert.equal(await client.c.cmd('NOOP'), '+OK', 'its client goes on: a request past its deadline is not carried out');
  });
});

describe('R-X21 R-X16 admin.listen refused with 2 workers', { timeout: 60_000 }, () => {
  it('R-X21 R-X16 a non-loopback admin.listen without TLS: one-line error, exit 1, both workers stopped', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'poplar-admin-w-'));
    try {
      const run = await poplar(['serve', '--data', dataDir, '-o', 'server.first_run_user=', '-o', 'server.workers=2', '-o', 'pop3.listen=127.0.0.1:0',
        '-o', 'lmtp.listen=127.0.0.1:0', '-o', 'admin.listen=0.0.0.0:0']);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /^poplar: admin\.listen 0\.0\.0\.0:0 is not a loopback address/);
      assert.equal(run.stderr.split('\n').length, 2, 'one line, no stack');
      const exits = run.stdout.split('\n').filter((l) => l.includes('"event":"worker_exit"'));
      assert.equal(exits.length, 2, 'the primary stopped both workers before it exited');
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

/**
 * Limits across nodes (issue 15, R-X17 with R-X9 and R-X16): real `poplar serve` nodes on one
 * PostgreSQL database (`storage.backend = "postgres"`, `postgres.lease_seconds = 5`). The per-user
 * session cap holds for the cluster (a login on one node while the user is logged in on another
 * gets the refusal one node gives), the failed-login penalty counts failures on every node, per
 * address and per user (shown by the `delayMs` each node logs), one node at a time runs the
 * scheduled retention sweeper, a node killed with SIGKILL keeps its user's slot until its lease
 * lapses (not before) and hands the sweeper's role on, and with the database down a login fails
 * closed (-ERR [SYS/TEMP]) instead of being checked without the penalty.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { poplar } from '../cli/run.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { startPoplar, type PoplarProcess } from '../helpers/poplar-process.js';
import { needPostgres, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { waitFor } from '../helpers/wait.js';

const USERS = { alice: 'wonderland', bob: 'builder', carol: 'singer', dora: 'explorer' };
const LEASE_S = 5;

describe('R-X17 limits across nodes on one PostgreSQL', { skip: needPostgres() }, () => {
  let pg: PostgresServer;
  let url: string;
  const nodes: PoplarProcess[] = [];
  let a: PoplarProcess;
  let b: PoplarProcess;
  /** Started first, so it takes the sweeper's role; killed by the SIGKILL test. */
  let c: PoplarProcess;
  const clients: Pop3Client[] = [];

  const settings = (): string[] => [
    'storage.backend=postgres', `postgres.url=${url}`, `postgres.lease_seconds=${LEASE_S}`, 'postgres.pool_size=4',
    'pop3.max_connections_per_user=1', 'auth.failure_delay=100', 'auth.failure_delay_max=10000',
    'retention.sweep_interval=1', 'retention.unretrieved_days=30',
  ];
  const node = async (workers?: number, extra: readonly string[] = []): Promise<PoplarProcess> => {
    const n = await startPoplar({ users: USERS, overrides: [...settings(), ...extra], ...(workers === undefined ? {} : { workers }) });
    nodes.push(n);
    return n;
  };

  before(async () => {
    pg = await startPostgres({ own: true });
    url = await pg.createDatabase();
    const migrated = await poplar(['db', 'migrate', '-o', 'storage.backend=postgres', '-o', `postgres.url=${url}`]);
    assert.equal(migrated.code, 0, migrated.stderr);
    // One process: SIGKILL ends the whole node at once (with workers, they would end their sessions cleanly).
    c = await node(1);
    await waitFor(() => c.events('retention_swept').length > 0, 10_000, 'node C sweeps');
    a = await node();
    b = await node();
  });
  after(async () => {
    for (const cl of clients) cl.socket.destroy();
    for (const n of nodes) await n.cleanup();
    await pg?.stop();
  });

  async function connect(n: PoplarProcess, from?: string): Promise<Pop3Client> {
    const cl = await Pop3Client.connect(n.pop3Port, '127.0.0.1', from);
    clients.push(cl);
    return cl;
  }

  /** The `delayMs` of the last auth_failed line `n` logged for `user`. */
  const loggedDelay = async (n: PoplarProcess, user: string, count: number): Promise<number> => {
    await waitFor(() => n.events('auth_failed').filter((e) => e['user'] === user).length >= count, 5000, `${user}'s failure logged`);
    return n.events('auth_failed').filter((e) => e['user'] === user).at(-1)!['delayMs'] as number;
  };

  it('R-X17 R-X9 the per-user cap holds across nodes: cap 1, alice logged in on node A, a login on node B gets the refusal one node gives', async () => {
    const onA = await connect(a);
    assert.match(await onA.login('alice', USERS.alice), /^\+OK/);
    const sameNode = await connect(a);
    const oneNode = await sameNode.login('alice', USERS.alice);
    assert.match(oneNode, /^-ERR \[IN-USE\] Too many sessions/, 'one node refuses a second session');
    const onB = await connect(b);
    assert.equal(await onB.login('alice', USERS.alice), oneNode, 'node B refuses the same way');
    assert.match(await onA.cmd('QUIT'), /^\+OK/);
    await waitFor(async () => {
      const again = await connect(b);
      const reply = await again.login('alice', USERS.alice);
      if (reply.startsWith('+OK')) await again.cmd('QUIT');
      return reply.startsWith('+OK');
    }, 5000, 'alice admitted on B once her session on A ended');
  });

  it('R-X17 R-X9 failed logins on node A delay the next attempt on node B, per user (from another address) and per address (for another user)', async () => {
    assert.match(await (await connect(a)).login('bob', 'wrong-1'), /^-ERR \[AUTH\]/);
    assert.equal(await loggedDelay(a, 'bob', 1), 100, 'the first failure: the base delay');
    // Per user: bob again, on B, from another address (127.0.0.2 has no failures).
    assert.match(await (await connect(b, '127.0.0.2')).login('bob', 'wrong-2'), /^-ERR \[AUTH\]/);
    assert.equal(await loggedDelay(b, 'bob', 1), 200, 'bob\'s second failure, the first on B');
    // Per address: 127.0.0.1 failed for bob on A; carol (no failures) from it on B.
    assert.match(await (await connect(b)).login('carol', 'wrong-3'), /^-ERR \[AUTH\]/);
    assert.equal(await loggedDelay(b, 'carol', 1), 200, 'the address\'s second failure, the first on B');
  });

  it('R-X17 one node at a time runs the scheduled retention sweeper', async () => {
    const before = nodes.map((n) => n.events('retention_swept').length);
    await new Promise((r) => setTimeout(r, 3500));
    const runs = nodes.map((n, i) => n.events('retention_swept').length - before[i]!);
    assert.ok(runs[0]! >= 2, `node C swept ${runs[0]} times in 3.5 s`);
    assert.deepEqual(runs.slice(1), [0, 0], 'nodes A and B did not sweep');
  });

  it('R-X17 a node killed with SIGKILL while dora is logged in on it: her slot frees after its lease, not before, and another node takes the sweeper\'s role', async () => {
    const onC = await connect(c);
    assert.match(await onC.login('dora', USERS.dora), /^\+OK/);
    const sweptBefore = [a, b].map((n) => n.events('retention_swept').length);
    const died = Date.now();
    await c.kill();
    await onC.closed();
    assert.match(await (await connect(b)).login('dora', USERS.dora), /^-ERR \[IN-USE\] Too many sessions/, 'refused at once after the kill');
    let admitted = 0;
    await waitFor(async () => {
      const cl = await connect(b);
      const reply = await cl.login('dora', USERS.dora);
      if (!reply.startsWith('+OK')) return false;
      admitted = Date.now();
      await cl.cmd('QUIT');
      return true;
    }, (LEASE_S + 5) * 1000, 'dora admitted after C\'s lease');
    const waited = admitted - died;
    // The lease lapses 2/3 to 3/3 of LEASE_S after the death (renewed every third); a late renewal timer lowers that.
    assert.ok(waited >= 1500, `not at the death, not long before the lease could lapse (${waited} ms)`);
    assert.ok(waited <= (LEASE_S + 2) * 1000, `within the lease (${waited} ms)`);
    await waitFor(() => [a, b].some((n, i) => n.events('retention_swept').length > sweptBefore[i]!), (LEASE_S + 5) * 1000, 'A or B sweeps');
  });

  it('R-X17 R-X16 a worker killed with SIGKILL: the primary gives its user\'s slot back at once, not after the lease (30 s here)', async () => {
    const w = await node(2, ['postgres.lease_seconds=30']);
    const held = await connect(w);
    assert.match(await held.login('carol', USERS.carol), /^\+OK/);
    await waitFor(() => w.events('login').some((e) => e['user'] === 'carol'), 5000, 'the login logged');
    const workerId = w.events('login').filter((e) => e['user'] === 'carol').at(-1)!['worker'];
    const pid = w.events('worker_ready').find((e) => e['workerId'] === workerId)!['pid'] as number;
    const died = Date.now();
    process.kill(pid, 'SIGKILL');
    await held.closed();
    await waitFor(async () => {
      const cl = await connect(w);
      const reply = await cl.login('carol', USERS.carol);
      if (reply.startsWith('+OK')) await cl.cmd('QUIT');
      return reply.startsWith('+OK');
    }, 10_000, 'carol admitted again on the node');
    assert.ok(Date.now() - died < 10_000, `admitted ${Date.now() - died} ms after the worker died`);
  });

  it('R-X17 R-X21 with workers, the primary\'s admin API shows the cluster\'s penalty: a failure on node A and one on node W give ghost 200 ms', async () => {
    const w = await node(2, ['admin.listen=127.0.0.1:0']);
    await waitFor(() => w.events('listening').some((e) => e['protocol'] === 'http'), 10_000, 'admin listening');
    const port = w.events('listening').find((e) => e['protocol'] === 'http')!['port'] as number;
    const token = (await w.cli(['admin', 'token'])).stdout.trim();
    assert.match(await (await connect(a, '127.0.0.4')).login('ghost', 'wrong-a'), /^-ERR \[AUTH\]/);
    assert.match(await (await connect(w, '127.0.0.4')).login('ghost', 'wrong-w'), /^-ERR \[AUTH\]/);
    await waitFor(() => w.events('auth_failed').some((e) => e['user'] === 'ghost'), 5000, 'the failure on W logged');
    const r = await fetch(`http://127.0.0.1:${port}/api/v1/failed-logins/by-user`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200);
    const ghost = ((await r.json()) as { items: Array<Record<string, unknown>> }).items.find((o) => o['key'] === 'ghost');
    assert.equal(ghost?.['penaltyMs'], 200, 'two failures (one per node) double the delay');
  });

  it('R-X17 R-X16 the database down: a login fails closed with -ERR [SYS/TEMP], a wrong password too (never checked without the penalty)', async () => {
    await pg.kill();
    try {
      const wrong = await connect(a, '127.0.0.3');
      assert.match(await wrong.login('alice', 'guess-1'), /^-ERR \[SYS\/TEMP\]/);
      const right = await connect(b, '127.0.0.3');
      assert.match(await right.login('alice', USERS.alice), /^-ERR \[SYS\/TEMP\]/);
      assert.equal(a.events('auth_failed').filter((e) => e['user'] === 'alice').length, 0, 'no password was checked');
    } finally {
      await pg.start();
    }
  });
});

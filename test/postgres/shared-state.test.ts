/**
 * The shared state on PostgreSQL (issue 15 "limits across nodes", R-X17 with R-X9/R-X16) against a
 * real server: two PostgresSharedState instances on separate pools stand for two nodes on one
 * database. The per-user cap and the failed-login counters are the database's, a holder that stops
 * renewing (its pool gone: a dead node) releases its sessions after its lease and not before, a
 * database that does not answer fails every question closed, and one ClusterLease holder at a time.
 * The processes themselves: test/cluster/pg-limits.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SharedStateError } from '../../src/errors.js';
import { LocalSharedState } from '../../src/shared/local-state.js';
import type { SharedSettings } from '../../src/shared/shared-state.js';
import { connectPostgres, type Sql } from '../../src/storage/postgres/client.js';
import { migrate } from '../../src/storage/postgres/migrate.js';
import { ClusterLease } from '../../src/storage/postgres/pg-lease.js';
import { PostgresSharedState } from '../../src/storage/postgres/pg-shared-state.js';
import { needPostgres, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { waitFor } from '../helpers/wait.js';

const SETTINGS: SharedSettings = {
  limits: { maxConnections: 0, maxConnectionsPerIp: 0, maxConnectionsPerUser: 1 },
  penalty: { baseMs: 100, maxMs: 10_000, windowMs: 60_000 },
  loginCache: { ttlMs: 0, maxEntries: 0 },
};

describe('R-X17 the shared state on PostgreSQL', { skip: needPostgres() }, () => {
  let pg: PostgresServer;
  const pools: Sql[] = [];
  const states: PostgresSharedState[] = [];
  before(async () => {
    pg = await startPostgres({ own: true });
  });
  after(async () => {
    for (const s of states) await s.close();
    for (const sql of pools) await sql.end({ timeout: 1 }).catch(() => undefined);
    await pg?.stop();
  });

  const pool = (url: string): Sql => {
    const sql = connectPostgres({ url, poolSize: 2, connectTimeout: 2 });
    pools.push(sql);
    return sql;
  };

  async function database(): Promise<string> {
    const url = await pg.createDatabase();
    await migrate(pool(url));
    return url;
  }

  async function node(url: string, opts: { leaseSeconds?: number; timeoutMs?: number; settings?: SharedSettings } = {}): Promise<{ state: PostgresSharedState; sql: Sql }> {
    const sql = pool(url);
    const settings = opts.settings ?? SETTINGS;
    const state = await PostgresSharedState.open({
      sql, local: new LocalSharedState(settings), leaseSeconds: opts.leaseSeconds ?? 60, settings, timeoutMs: opts.timeoutMs ?? 1000,
    });
    states.push(state);
    return { state, sql };
  }

  it('R-X17 R-X9 the per-user cap counts the sessions of every node: cap 1, a second login on another node is refused until the first ends', async () => {
    const url = await database();
    const [a, b] = [await node(url), await node(url)];
    assert.equal(await a.state.acquireUser('alice'), true);
    assert.equal(await b.state.acquireUser('alice'), false, 'alice is logged in on node A');
    assert.equal(await b.state.acquireUser('bob'), true, 'another user is not affected');
    a.state.releaseUser('alice');
    await waitFor(async () => b.state.acquireUser('alice'), 3000, 'alice admitted on B once A released her');
    assert.equal(await a.state.acquireUser('alice'), false);
  });

  it('R-X17 R-X9 failed logins on one node delay the next attempt on another, per address and per user; a stale password is not counted twice; success clears the user', async () => {
    const url = await database();
    const [a, b] = [await node(url), await node(url)];
    const t = Date.now();
    assert.equal(await a.state.loginFailed('192.0.2.1', 'alice', 'fp-one', t), 100);
    assert.equal(await b.state.penaltyNow('192.0.2.1', undefined, t + 1), 100, 'the address, asked on B');
    assert.equal(await b.state.penaltyNow('198.51.100.7', 'alice', t + 1), 100, 'the user, from another address, asked on B');
    assert.equal(await b.state.loginFailed('198.51.100.7', 'alice', 'fp-two', t + 2), 200, 'alice\'s second failure, counted on B');
    assert.equal(await a.state.loginFailed('203.0.113.5', 'alice', 'fp-two', t + 3), 200, 'the same wrong password again: not counted');
    assert.equal(await a.state.loginFailed('192.0.2.1', 'carol', 'fp-x', t + 4), 200, 'the address\'s second failure (another user)');
    a.state.loginSucceeded('alice');
    await waitFor(async () => (await b.state.penaltyNow('203.0.113.99', 'alice', t + 5)) === 0, 3000, 'alice\'s counter cleared');
    assert.equal(await b.state.penaltyNow('192.0.2.1', 'alice', t + 5), 200, 'not the address\'s');
    assert.equal(await b.state.penaltyNow('192.0.2.1', undefined, t + 60_005), 0, 'faded after the window');
  });

  it('R-X17 a dead node\'s sessions free the cap after its lease, not before; expired penalty rows are pruned', async () => {
    const url = await database();
    const a = await node(url, { leaseSeconds: 3 });
    const b = await node(url, { leaseSeconds: 3 });
    assert.equal(await a.state.acquireUser('alice'), true);
    await a.state.loginFailed('192.0.2.9', 'old', undefined, Date.now() - 120_000);
    // A dies: its pool is gone, so it renews nothing and gives nothing back.
    const died = Date.now();
    await a.sql.end({ timeout: 0 });
    assert.equal(await b.state.acquireUser('alice'), false, 'refused while A\'s lease runs');
    await waitFor(async () => b.state.acquireUser('alice'), 6000, 'admitted once A\'s lease lapsed');
    const waited = Date.now() - died;
    assert.ok(waited >= 1000 && waited <= 4500, `freed ${waited} ms after the death (lease 3 s, renewed every second)`);
    await b.state.renew();
    const raw = pool(url);
    const [holders] = await raw<{ n: number }[]>`SELECT count(*)::int AS n FROM shared_holders WHERE id = ${a.state.holder}`;
    assert.equal(holders!.n, 0, 'the dead holder is removed by the next renewal');
    const [rows] = await raw<{ n: number }[]>`SELECT count(*)::int AS n FROM shared_penalties`;
    assert.equal(rows!.n, 0, 'penalty rows older than the window are pruned');
  });

  it('R-X17 a node cut off longer than its lease registers again with its sessions when it reaches the database', async () => {
    const url = await database();
    const [a, b] = [await node(url), await node(url)];
    assert.equal(await a.state.acquireUser('alice'), true);
    await pool(url)`DELETE FROM shared_holders WHERE id = ${a.state.holder}`; // as another node's renewal does after the lease
    assert.equal(await b.state.acquireUser('alice'), true, 'A\'s session lapsed with its holder');
    b.state.releaseUser('alice');
    const raw = pool(url);
    await waitFor(async () => (await raw<{ n: number }[]>`SELECT count(*)::int AS n FROM shared_user_sessions`)[0]!.n === 0, 3000, 'B released');
    await a.state.renew();
    assert.equal(await b.state.acquireUser('alice'), false, 'A\'s session is counted again');
  });

  it('R-X17 R-X16 the database unreachable or slow: every question rejects with SharedStateError within the timeout (fail closed)', async () => {
    const url = await database();
    const a = await node(url, { timeoutMs: 500 });
    const raw = pool(url);
    // Slow: a transaction holds every shared table; the questions wait behind it.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let taken!: () => void;
    const lockTaken = new Promise<void>((r) => (taken = r));
    const locked = raw.begin(async (tx) => {
      await tx`LOCK TABLE shared_penalties, shared_user_sessions IN ACCESS EXCLUSIVE MODE`;
      taken();
      await held;
    });
    await Promise.race([lockTaken, locked]); // the questions start only once the tables are locked
    const t0 = Date.now();
    await assert.rejects(a.state.penaltyNow('192.0.2.1', 'alice', Date.now()), SharedStateError);
    await assert.rejects(a.state.acquireUser('alice'), SharedStateError);
    await assert.rejects(a.state.loginFailed('192.0.2.1', 'alice', 'fp', Date.now()), SharedStateError);
    assert.ok(Date.now() - t0 < 2500, 'within the timeout each');
    release();
    await locked;
    // Unreachable: the server is down.
    await pg.kill();
    try {
      const t1 = Date.now();
      await assert.rejects(a.state.acquireUser('bob'), SharedStateError);
      await assert.rejects(a.state.penaltyNow('192.0.2.1', undefined, Date.now()), SharedStateError);
      assert.ok(Date.now() - t1 < 2500, 'within the timeout each');
    } finally {
      await pg.start();
    }
    // The timed-out acquire may have landed after all: its token is deleted at the next renewal.
    await a.state.renew();
    assert.equal(await a.state.acquireUser('alice'), true, 'no leaked session slot');
  });

  it('R-X17 every node gets the same key, kept in the database', async () => {
    const url = await database();
    const [a, b] = [await node(url), await node(url)];
    assert.equal(a.state.key.length, 32);
    assert.ok(a.state.key.equals(b.state.key));
  });

  it('R-X17 one ClusterLease holder at a time; the role passes on when its holder dies (lease), at once when it gives it up', async () => {
    const url = await database();
    const [sa, sb] = [pool(url), pool(url)];
    const a = new ClusterLease(sa, 'retention-sweeper', 3);
    const b = new ClusterLease(sb, 'retention-sweeper', 3);
    assert.equal(await a.take(), true);
    assert.equal(await b.take(), false);
    await new Promise((r) => setTimeout(r, 3500));
    assert.equal(await b.take(), false, 'A renews while it lives');
    assert.equal(await a.take(), true);
    await a.release();
    assert.equal(await b.take(), true, 'given up: B takes it at once');
    const died = Date.now();
    await sb.end({ timeout: 0 }); // B dies
    const c = new ClusterLease(pool(url), 'retention-sweeper', 3);
    await waitFor(() => c.take(), 6000, 'C takes the role after B\'s lease');
    assert.ok(Date.now() - died >= 1000, 'not before B\'s lease lapsed');
    await c.release();
  });
});

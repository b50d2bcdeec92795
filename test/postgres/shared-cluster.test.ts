/**
 * The test suite's shared PostgreSQL (test/helpers/postgres.ts, scripts/test-services.mjs, issue
 * 13's suite speed): with POPLAR_TEST_PG_URL set, `startPostgres()` hands out views on one cluster
 * that keep test files apart (each its own databases, dropped when it stops) and refuse what would
 * disturb the other files (kill, start); `{ own: true }` still starts a cluster of its own.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import postgres from 'postgres';
import { needPostgres, SHARED_PG_ENV, startPostgres, type PostgresServer } from '../helpers/postgres.js';

describe('the test suite\'s shared PostgreSQL cluster', { skip: needPostgres() }, () => {
  let cluster: PostgresServer;
  let saved: string | undefined;
  before(async () => {
    // This file's own cluster stands in for the runner's, so it runs the same alone or in npm test.
    cluster = await startPostgres({ own: true });
    saved = process.env[SHARED_PG_ENV];
    process.env[SHARED_PG_ENV] = cluster.url;
  });
  after(async () => {
    if (saved === undefined) delete process.env[SHARED_PG_ENV];
    else process.env[SHARED_PG_ENV] = saved;
    await cluster?.stop();
  });

  async function databases(): Promise<string[]> {
    const sql = postgres(cluster.url, { max: 1, onnotice: () => undefined });
    try {
      return (await sql<{ datname: string }[]>`SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres' ORDER BY 1`).map((r) => r.datname);
    } finally {
      await sql.end({ timeout: 1 });
    }
  }

  it('two files get views on the one cluster, each with its own databases, dropped by its stop() even with a pool still open', async () => {
    const [a, b] = [await startPostgres(), await startPostgres()];
    assert.equal(a.port, cluster.port);
    assert.equal(b.port, cluster.port);
    const [urlA, urlB] = [await a.createDatabase(), await b.createDatabase()];
    assert.notEqual(urlA, urlB);
    const open = postgres(urlA, { max: 1, onnotice: () => undefined });
    await open`CREATE TABLE only_in_a (x int)`;
    const other = postgres(urlB, { max: 1, onnotice: () => undefined });
    const [row] = await other<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'only_in_a'`;
    assert.equal(row!.n, 0);
    await other.end({ timeout: 1 });
    assert.deepEqual(await databases(), [new URL(urlA).pathname.slice(1), new URL(urlB).pathname.slice(1)].sort());
    await a.stop();
    assert.deepEqual(await databases(), [new URL(urlB).pathname.slice(1)]);
    await open.end({ timeout: 0 }).catch(() => undefined);
    await b.stop();
    assert.deepEqual(await databases(), []);
  });

  it('a view refuses kill(), start() and pid() with the way out (startPostgres({ own: true })), and the cluster keeps running', async () => {
    const view = await startPostgres();
    await assert.rejects(view.kill(), /startPostgres\(\{ own: true \}\)/);
    await assert.rejects(view.start(), /startPostgres\(\{ own: true \}\)/);
    assert.throws(() => view.pid(), /startPostgres\(\{ own: true \}\)/);
    assert.ok(cluster.pid() !== undefined);
    await view.stop();
  });

  it('{ own: true }, fsync or settings start a cluster of their own', async () => {
    const own = await startPostgres({ settings: { work_mem: "'8MB'" } });
    try {
      assert.notEqual(own.port, cluster.port);
      assert.ok(own.pid() !== undefined);
    } finally {
      await own.stop();
    }
  });
});

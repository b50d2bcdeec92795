/**
 * Schema migrations (issue 15, R-X17): `poplar db migrate` applies each numbered SQL file once,
 * even when two nodes run it at once, and a node refuses a schema it does not know or that is not
 * migrated, with a one-line reason. Against a real PostgreSQL (test/helpers/postgres.ts).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectPostgres, type Sql } from '../../src/storage/postgres/client.js';
import { appliedVersions, checkSchema, loadMigrations, migrate, SchemaError } from '../../src/storage/postgres/migrate.js';
import { needPostgres, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { poplar } from '../cli/run.js';

describe('PostgreSQL schema migrations', { skip: needPostgres() }, () => {
  let pg: PostgresServer;
  let dataDir: string;
  const pools: Sql[] = [];
  const pool = (url: string): Sql => {
    const sql = connectPostgres({ url, poolSize: 4 });
    pools.push(sql);
    return sql;
  };
  before(async () => {
    pg = await startPostgres();
    dataDir = await mkdtemp(join(tmpdir(), 'poplar-pgmig-'));
  });
  after(async () => {
    for (const sql of pools) await sql.end({ timeout: 1 });
    await pg?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('R-X17 the migrations are numbered files, ascending, and 001 creates the mail tables', async () => {
    const known = await loadMigrations();
    assert.ok(known.length >= 1);
    assert.deepEqual(known[0]!.version, 1);
    assert.equal(known[0]!.name, 'mail');
    assert.deepEqual(known.map((m) => m.version), [...known.map((m) => m.version)].sort((a, b) => a - b));
  });

  it('R-X17 two migrate runs at once apply every version exactly once', async () => {
    const url = await pg.createDatabase();
    const [a, b] = await Promise.all([migrate(pool(url)), migrate(pool(url))]);
    const known = (await loadMigrations()).map((m) => m.version);
    assert.deepEqual([...a.applied, ...b.applied].sort((x, y) => x - y), known, 'each version applied by exactly one run');
    assert.equal(a.current, known[known.length - 1]);
    assert.deepEqual(await appliedVersions(pool(url)), known);
    assert.deepEqual((await migrate(pool(url))).applied, [], 'a third run applies nothing');
    await checkSchema(pool(url));
  });

  it('R-X17 two `poplar db migrate` processes at once both succeed; the schema is then current', async () => {
    const url = await pg.createDatabase();
    const args = ['db', 'migrate', '--data', dataDir, '-o', 'storage.backend=postgres', '-o', `postgres.url=${url}`];
    const runs = await Promise.all([poplar(args), poplar(args)]);
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const out = runs.map((r) => r.stdout).join('');
    assert.match(out, /applied version 1\b/);
    assert.match(out, /schema (up to date at|at) version \d+/);
    await checkSchema(pool(url));
  });

  it('R-X17 start is refused on a database not migrated, or migrated by a newer poplar', async () => {
    const url = await pg.createDatabase();
    const sql = pool(url);
    await assert.rejects(checkSchema(sql), (e: unknown) => e instanceof SchemaError && /not migrated: run "poplar db migrate"/.test(e.message));
    const known = await loadMigrations();
    await migrate(sql, known.slice(0, 1));
    if (known.length > 1) {
      await assert.rejects(checkSchema(sql), (e: unknown) => e instanceof SchemaError && /lacks version/.test(e.message));
    }
    await migrate(sql);
    await sql`INSERT INTO schema_migrations (version, name) VALUES (999, 'from-the-future')`;
    await assert.rejects(checkSchema(sql), (e: unknown) =>
      e instanceof SchemaError && /version 999, which this poplar does not know/.test(e.message) && !e.message.includes('\n'));
    const r = await poplar(['db', 'migrate', '--data', dataDir, '-o', `postgres.url=${url}`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^poplar: the database schema has version 999, which this poplar does not know/);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line, no stack');
  });

  it('R-X17 a URL with several hosts and target_session_attrs=read-write connects to the one that answers as a primary', async () => {
    const url = await pg.createDatabase();
    const db = new URL(url).pathname;
    // The first host is down (nothing listens on port 1): the pool goes on to the next one.
    const multi = `postgres://poplar@127.0.0.1:1,127.0.0.1:${pg.port}${db}?target_session_attrs=read-write`;
    const sql = connectPostgres({ url: multi, poolSize: 1, connectTimeout: 5 });
    pools.push(sql);
    await migrate(sql);
    const [row] = await sql<{ port: number; ro: string }[]>`SELECT inet_server_port() AS port, current_setting('transaction_read_only') AS ro`;
    assert.deepEqual(row, { port: pg.port, ro: 'off' });
    const r = await poplar(['db', 'migrate', '--data', dataDir, '-o', `postgres.url=${multi}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /schema up to date/);
  });

  it('R-X17 `poplar db migrate` without postgres.url, or with a database that is down, fails in one line', async () => {
    const none = await poplar(['db', 'migrate', '--data', dataDir]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /^poplar: postgres\.url is not set/);
    const down = await poplar(['db', 'migrate', '--data', dataDir, '-o', 'postgres.url=postgres://poplar:secret@127.0.0.1:1/x', '-o', 'postgres.connect_timeout=2']);
    assert.equal(down.code, 1);
    assert.equal(down.stderr.trim().split('\n').length, 1, down.stderr);
    assert.ok(!down.stderr.includes('secret'), 'the password is not printed');
  });
});

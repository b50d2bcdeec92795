/**
 * Pools on a test PostgreSQL (test/helpers/postgres.ts) for the directory and policy tests: a fresh
 * database, migrated, per call; `endPools` ends every pool made. `postgresForFile` sets up a test
 * file: its server and a scratch folder, both gone after the file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { connectPostgres, type Sql } from '../../src/storage/postgres/client.js';
import { migrate } from '../../src/storage/postgres/migrate.js';
import { needPostgres, startPostgres, type PostgresServer } from './postgres.js';

const pools: Sql[] = [];

/** A pool on a new, migrated database; also its URL. */
export async function migratedDatabase(server: PostgresServer): Promise<{ sql: Sql; url: string }> {
  const url = await server.createDatabase();
  const sql = poolOn(url);
  await migrate(sql);
  return { sql, url };
}

/** Another pool on a database (a second node). */
export function poolOn(url: string): Sql {
  const sql = connectPostgres({ url, poolSize: 4, connectTimeout: 2 });
  pools.push(sql);
  return sql;
}

export async function endPools(): Promise<void> {
  await Promise.all(pools.splice(0).map((sql) => sql.end({ timeout: 1 }).catch(() => undefined)));
}

/**
 * A test file's PostgreSQL (test/helpers/postgres.ts, started in `before` unless PostgreSQL is
 * missing: then `skip` names the package) and a scratch folder `root`; every pool, the server and
 * the folder are ended in `after`.
 */
export function postgresForFile(prefix: string): { readonly root: string; readonly skip: string | false; server(): PostgresServer } {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const skip = needPostgres();
  let pg: PostgresServer | undefined;
  before(async () => {
    if (skip === false) pg = await startPostgres();
  });
  after(async () => {
    await endPools();
    await pg?.stop();
    rmSync(root, { recursive: true, force: true });
  });
  return {
    root,
    skip,
    server: () => {
      if (pg === undefined) throw new Error('PostgreSQL was not started (skipped, or before() failed)');
      return pg;
    },
  };
}

/**
 * In a `describe`: the suite's PostgreSQL (started in its `before`) and `track(sql)`, which ends a
 * pool after the suite; the server is stopped after the pools.
 */
export function postgresInSuite(): { server(): PostgresServer; track<T extends Sql>(sql: T): T } {
  let pg: PostgresServer | undefined;
  const pools: Sql[] = [];
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await Promise.all(pools.splice(0).map((sql) => sql.end({ timeout: 1 }).catch(() => undefined)));
    await pg?.stop();
  });
  return {
    server: () => {
      if (pg === undefined) throw new Error('PostgreSQL was not started (before() failed)');
      return pg;
    },
    track: (sql) => {
      pools.push(sql);
      return sql;
    },
  };
}

/** The pool, with every tagged-template query it is asked for counted in `count.n`. */
export function countedQueries(sql: Sql): { sql: Sql; count: { n: number } } {
  const count = { n: 0 };
  const proxy = new Proxy(sql, {
    apply(target, self, args: unknown[]) {
      count.n++;
      return Reflect.apply(target, self, args) as unknown;
    },
  });
  return { sql: proxy, count };
}

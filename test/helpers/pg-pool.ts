/**
 * Pools on a test PostgreSQL (test/helpers/postgres.ts) for the directory and policy tests: a fresh
 * database, migrated, per call; `endPools` ends every pool made.
 */
import { connectPostgres, type Sql } from '../../src/storage/postgres/client.js';
import { migrate } from '../../src/storage/postgres/migrate.js';
import type { PostgresServer } from './postgres.js';

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

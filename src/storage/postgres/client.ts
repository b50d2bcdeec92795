/**
 * The connection pool to PostgreSQL (issue 15, R-X17), on postgres.js: it takes a libpq-style URL
 * with several hosts and `target_session_attrs=read-write`, so after a failover the pool
 * reconnects to whichever host is the primary now (node-postgres takes one host per URL).
 * Every part of poplar that keeps data in PostgreSQL (the mail store, the directory) builds its
 * pool here, so they share the timeouts and the type mapping.
 */
import postgres from 'postgres';

export type Sql = postgres.Sql;
export type TransactionSql = postgres.TransactionSql;

export interface PostgresOptions {
  /** libpq-style URL (`postgres.url`); may name several hosts. */
  readonly url: string;
  /** Connections at most (`postgres.pool_size`). */
  readonly poolSize?: number;
  /** Seconds to wait for a connection (`postgres.connect_timeout`). */
  readonly connectTimeout?: number;
  /** Milliseconds a statement may run, 0 for no limit (`postgres.statement_timeout`). */
  readonly statementTimeout?: number;
}

/** int8 (oid 20) as a JS number: uids, sizes and counts stay far below 2^53. */
const int8 = {
  to: 20,
  from: [20],
  serialize: (x: number | bigint | string): string => String(x),
  parse: (x: string): number => Number(x),
};

/** A pool; connections open on first use, so building one never fails on an unreachable database. */
export function connectPostgres(opts: PostgresOptions): Sql {
  if (opts.url === '') throw new Error('postgres.url is empty: set it to the database URL');
  return postgres(opts.url, {
    max: opts.poolSize ?? 10,
    connect_timeout: opts.connectTimeout ?? 10,
    idle_timeout: 60,
    onnotice: () => undefined,
    // A command (`poplar user list`) exits when its work is done, without ending the pool.
    unref_sockets: true,
    // The client's own bound, a second past the server's: a database that stops answering (frozen,
    // cut off) fails the query (a login -ERR [SYS/TEMP]) instead of leaving it waiting for ever.
    query_timeout: (opts.statementTimeout ?? 30_000) === 0 ? 0 : (opts.statementTimeout ?? 30_000) / 1000 + 1,
    // and its connection is closed a second later if the cancel is not answered either.
    cancel_timeout: 1,
    types: { int8 },
    connection: {
      application_name: 'poplar',
      statement_timeout: opts.statementTimeout ?? 30_000,
    },
  }) as unknown as Sql;
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:@/]*):[^@/]*@/, '$1:***@');
}

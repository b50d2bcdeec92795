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
type SessionAttrs = NonNullable<postgres.Options['target_session_attrs']>;

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

/**
 * The `target_session_attrs` to hand postgres.js for what the URL (or PGTARGETSESSIONATTRS) asks.
 * libpq's `read-write` means a server that is not in hot standby and whose
 * default_transaction_read_only is off; postgres.js checks only the second, and a hot standby
 * reports it off, so its `read-write` takes a standby when the primary does not answer (every
 * write then fails until the connection is recycled). Its `primary` checks hot standby
 * (`in_hot_standby`, or pg_is_in_recovery() on servers before 14): that is the choice for
 * `read-write`. A primary with default_transaction_read_only on is then taken, and its writes
 * fail as any database error does (-ERR [SYS/TEMP], 451), nothing lost.
 */
export function sessionAttrs(url: string, env: NodeJS.ProcessEnv = process.env): SessionAttrs | undefined {
  const query = /\?(.*)$/.exec(url)?.[1] ?? '';
  const asked = new URLSearchParams(query).get('target_session_attrs') ?? env['PGTARGETSESSIONATTRS'];
  if (asked === undefined || asked === null || asked === '') return undefined;
  // Any other value goes through as asked: postgres.js names one it does not support.
  return (asked === 'read-write' ? 'primary' : asked) as SessionAttrs;
}

/**
 * Seconds the pool waits before its next connection attempt after `retries` failed ones while no
 * host answers (postgres.js's own curve, 3^retries / 100 s with jitter, capped at 1 s instead of
 * 20 s). Meanwhile queries fail at once (-ERR [SYS/TEMP], 451), so the wait only decides how soon a
 * node sees a promoted standby: with the 20 s cap, an outage of ~10 s (a failover) left a node
 * refusing for 10-20 s more after the new primary was up; with 1 s, at most about a second.
 */
export function reconnectBackoff(retries: number): number {
  return (0.5 + Math.random() / 2) * Math.min(3 ** retries / 100, 1);
}

/** A pool; connections open on first use, so building one never fails on an unreachable database. */
export function connectPostgres(opts: PostgresOptions): Sql {
  if (opts.url === '') throw new Error('postgres.url is empty: set it to the database URL');
  const attrs = sessionAttrs(opts.url);
  return postgres(opts.url, {
    ...(attrs === undefined ? {} : { target_session_attrs: attrs }),
    max: opts.poolSize ?? 10,
    connect_timeout: opts.connectTimeout ?? 10,
    idle_timeout: 60,
    backoff: reconnectBackoff,
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

/**
 * A streaming standby of a test PostgreSQL (test/helpers/postgres.ts), for the failover test
 * (issue 15, R-X17): `pg_basebackup -R` copies the primary into a fresh temp directory (as the
 * `postgres` user when the tests run as root, like every PostgreSQL program of the harness), and
 * the copy starts as a hot standby on another free loopback port, streaming from the primary.
 * `makeSynchronous` sets `synchronous_standby_names` on the primary, so from then on a COMMIT
 * there returns only after this standby has flushed it; `promote` is `pg_ctl promote`.
 *
 * The standby's own `synchronous_standby_names` is empty, so once promoted (with no standby of its
 * own) its commits do not wait for anyone. Skip rule: needPostgres() and
 * needProgram('pg_basebackup', 'postgresql').
 */
import { rmSync } from 'node:fs';
import { appendFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { chownToPostgres, live, pgCtlStart, postmasterPid, runPg, type PostgresServer } from './postgres.js';
import { waitFor } from './wait.js';

export interface Standby {
  readonly port: number;
  /** The temp directory: `data/` (the copy), `server.log`, the socket. */
  readonly dataDir: string;
  /** The postmaster's pid, undefined when it is not running. */
  pid(): number | undefined;
  /** `pg_ctl promote -w`: resolves when the standby accepts writes. */
  promote(): Promise<void>;
  /** `pg_ctl stop -m immediate` (or SIGKILL), then removes the temp directory. */
  stop(): Promise<void>;
}

/** A superuser connection to one server of the pair (closed after `fn`). */
async function withAdmin<T>(port: number, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(`postgres://poplar@127.0.0.1:${port}/postgres`, { max: 1, connect_timeout: 5, onnotice: () => undefined });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 1 }).catch(() => undefined);
  }
}

/** Copies `primary` with pg_basebackup -R and starts the copy as a streaming hot standby. */
export async function startStandby(primary: PostgresServer): Promise<Standby> {
  const dir = await mkdtemp(join(tmpdir(), 'poplar-pgstandby-'));
  chownToPostgres(dir);
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  // -R writes primary_conninfo and standby.signal; -X stream copies the WAL written meanwhile.
  await runPg('pg_basebackup', ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'poplar', '-D', data,
    '-R', '-X', 'stream', '-c', 'fast', '--no-sync']);
  // The copied postgresql.auto.conf names the primary's socket directory: later lines win.
  await appendFile(join(data, 'postgresql.auto.conf'),
    `unix_socket_directories = '${dir}'\nhot_standby = on\nsynchronous_standby_names = ''\n`);
  chownToPostgres(join(data, 'postgresql.auto.conf'));
  const port = await pgCtlStart(data, log);
  const pid = (): number | undefined => postmasterPid(data);
  const standby: Standby = {
    port,
    dataDir: dir,
    pid,
    async promote() {
      await runPg('pg_ctl', ['promote', '-w', '-t', '60', '-D', data]);
    },
    async stop() {
      live.delete(standby);
      if (pid() !== undefined) {
        await runPg('pg_ctl', ['stop', '-w', '-m', 'immediate', '-D', data]).catch(() => {
          const p = pid();
          if (p !== undefined) process.kill(p, 'SIGKILL');
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(standby);
  // Streaming: the primary sees the standby's WAL receiver.
  await waitFor(async () => withAdmin(primary.port, async (sql) =>
    (await sql`SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'`).length > 0), 30_000, 'standby streaming');
  return standby;
}

/**
 * `synchronous_standby_names = '*'` on the primary (synchronous_commit stays `on`: a COMMIT waits
 * for the standby to flush the WAL), and waits until the primary reports the standby as `sync`.
 */
export async function makeSynchronous(primary: PostgresServer): Promise<void> {
  await withAdmin(primary.port, async (sql) => {
    await sql`ALTER SYSTEM SET synchronous_standby_names = '*'`;
    await sql`SELECT pg_reload_conf()`;
  });
  await waitFor(async () => withAdmin(primary.port, async (sql) =>
    (await sql`SELECT 1 FROM pg_stat_replication WHERE sync_state = 'sync'`).length > 0), 30_000, 'synchronous standby');
}

/** Whether the server on `port` is in recovery (a standby); for assertions and transcripts. */
export async function inRecovery(port: number): Promise<boolean> {
  return withAdmin(port, async (sql) => {
    const [row] = await sql<{ r: boolean }[]>`SELECT pg_is_in_recovery() AS r`;
    return row!.r;
  });
}

/**
 * The PostgreSQL behind `poplar-pg` in `npm run bench:compare` (issue 15, R-X17): Debian's initdb
 * and pg_ctl run as the `postgres` system user (PostgreSQL refuses root) into `<work>/postgres`,
 * listening on 127.0.0.1 only, on a port below 32768 (outside the ephemeral range the load's
 * client sockets take). Durability is the production one: fsync, full_page_writes and
 * synchronous_commit on, so a delivery's 250 waits for its WAL flush as it would in service.
 *
 * The database's CPU is the postmaster's process tree (proc.ts treeCpuSeconds: live backends,
 * plus the cutime/cstime of the backends it reaped, i.e. every connection that closed).
 */
import { chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import postgres from 'postgres';
import { pgBin, runPg } from '../../test/helpers/postgres.js';
import { PostgresDirectory } from '../../src/auth/postgres-directory.js';
import { existsSync } from 'node:fs';

export interface BenchPostgres {
  /** `postgres://poplar@127.0.0.1:<port>/poplar` (trust authentication on loopback). */
  readonly url: string;
  readonly port: number;
  /** The postmaster's pid. */
  readonly pid: number;
  /** `postgresql.conf` settings that differ from initdb's, for the report. */
  readonly settings: Readonly<Record<string, string>>;
  /** pg_database_size of the poplar database, in bytes. */
  databaseSize(): Promise<number>;
  /** Connections open from poplar nodes (application_name 'poplar'), all nodes together. */
  poplarConnections(): Promise<number>;
  /** Puts every user in the database's directory with the same `{SCHEME}` hash. */
  addUsers(users: readonly string[], hash: string): Promise<void>;
  stop(): Promise<void>;
}

export function postgresInstalled(): boolean {
  return existsSync(pgBin('initdb')) || existsSync(pgBin('pg_ctl'));
}

function postgresIds(): { uid: number; gid: number } {
  const passwd = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
  if (passwd === undefined) throw new Error('no postgres system user: apt-get install postgresql');
  const f = passwd.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

export async function startBenchPostgres(work: string, port: number): Promise<BenchPostgres> {
  const dir = join(work, 'postgres');
  mkdirSync(dir, { recursive: true });
  const { uid, gid } = postgresIds();
  chownSync(dir, uid, gid);
  const data = join(dir, 'data');
  await runPg('initdb', ['-D', data, '-U', 'poplar', '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-instructions']);
  const settings: Record<string, string> = {
    listen_addresses: "'127.0.0.1'",
    port: String(port),
    unix_socket_directories: `'${dir}'`,
    fsync: 'on',
    synchronous_commit: 'on',
    full_page_writes: 'on',
    shared_buffers: "'256MB'",
    max_connections: '200',
  };
  const conf = join(data, 'postgresql.auto.conf');
  writeFileSync(conf, Object.entries(settings).map(([k, v]) => `${k} = ${v}\n`).join(''));
  chownSync(conf, uid, gid);
  await runPg('pg_ctl', ['start', '-w', '-t', '60', '-D', data, '-l', join(dir, 'server.log')]);
  const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const admin = postgres(`postgres://poplar@127.0.0.1:${port}/postgres`, { max: 1, onnotice: () => undefined });
  await admin.unsafe('CREATE DATABASE poplar');
  await admin.end({ timeout: 5 });
  const url = `postgres://poplar@127.0.0.1:${port}/poplar`;
  const sql = postgres(url, { max: 2, onnotice: () => undefined });
  return {
    url,
    port,
    pid,
    settings,
    async databaseSize() {
      const [row] = await sql<{ n: string }[]>`SELECT pg_database_size('poplar')::text AS n`;
      return Number(row!.n);
    },
    async poplarConnections() {
      const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'poplar'`;
      return row!.n;
    },
    async addUsers(users, hash) {
      // The directory's own code, so the rows are the ones `poplar user add` writes.
      const directory = new PostgresDirectory(sql as never);
      for (const u of users) await directory.add(u, hash);
    },
    async stop() {
      await sql.end({ timeout: 5 }).catch(() => undefined);
      await runPg('pg_ctl', ['stop', '-w', '-m', 'fast', '-D', data]).catch(() => undefined);
    },
  };
}

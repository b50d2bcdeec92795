/**
 * A real PostgreSQL for tests (issue 15: no in-memory fake): Debian's `initdb` and `pg_ctl` run into
 * a fresh temp directory, listening on 127.0.0.1 only, on a free port below 32768 (Linux hands out
 * ephemeral ports above it, so a client socket never takes ours). Tests run as root in CI and
 * PostgreSQL refuses to run as root: then every PostgreSQL program runs as the `postgres` system
 * user (`runuser -u postgres --`) in a directory chowned to it; a non-root user runs them directly.
 *
 * One database per test (`createDatabase`, cheap: a copy of template1), so tests do not see each
 * other's rows. `npm test` (scripts/run-tests.mjs with scripts/test-services.mjs) starts one cluster
 * for the whole run and exports its URL as POPLAR_TEST_PG_URL: `startPostgres()` then hands out a
 * view on that cluster (its databases, dropped at `stop()`) instead of an initdb per test file.
 * A file that kills, stops or restarts its server, or needs fsync or other settings, asks for its
 * own cluster (`{ own: true }`, implied by `fsync`/`settings`); without the variable (a test file
 * run alone with `node --test`) every call starts its own cluster, as before.
 * Skip rule: `{ skip: needPostgres() }` (needProgram: a loud skip locally, a failure in CI).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { connectPostgres } from '../../src/storage/postgres/client.js';
import { migrate } from '../../src/storage/postgres/migrate.js';
import { PostgresMailStore } from '../../src/storage/postgres/pg-store.js';
import { needProgram } from './external.js';
import { freeLowPort } from './ports.js';

const DEBIAN_BIN = '/usr/lib/postgresql/15/bin';

/** `false` when initdb, pg_ctl and postgres are here; else the skip reason (see needProgram). */
export function needPostgres(): string | false {
  return needProgram(['initdb', 'pg_ctl', 'postgres'], 'postgresql');
}

/** The program's path: Debian's versioned directory first, else the PATH's. */
export function pgBin(name: string): string {
  return existsSync(join(DEBIAN_BIN, name)) ? join(DEBIAN_BIN, name) : name;
}

const asRoot = process.getuid?.() === 0;

function postgresIds(): { uid: number; gid: number } {
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) throw new Error('running as root needs the postgres system user (apt-get install postgresql)');
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** Runs a PostgreSQL program as the unprivileged user; rejects with its output when it fails. */
export async function runPg(name: string, args: readonly string[]): Promise<string> {
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', pgBin(name), ...args]] : [pgBin(name), [...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${name} ${args.join(' ')} exited ${code}: ${out}`))));
  });
}

export interface StartPostgresOptions {
  /** fsync of WAL and data files; off by default (tests prove commits, not power loss). */
  readonly fsync?: boolean;
  /** More `postgresql.conf` settings, e.g. `{ synchronous_standby_names: '*' }`. */
  readonly settings?: Readonly<Record<string, string>>;
  /** A cluster of its own even when POPLAR_TEST_PG_URL names a shared one: for kill(), start(), pid(). */
  readonly own?: boolean;
}

/** The variable scripts/test-services.mjs sets to the shared cluster's `postgres` database URL. */
export const SHARED_PG_ENV = 'POPLAR_TEST_PG_URL';

export interface PostgresServer {
  /** `postgres://poplar@127.0.0.1:<port>/postgres` (trust authentication on loopback). */
  readonly url: string;
  readonly port: number;
  /** The temp directory: `data/` (the cluster), `server.log`, the socket. */
  readonly dataDir: string;
  /** Creates an empty database and returns its URL; `name` defaults to a fresh one. */
  createDatabase(name?: string): Promise<string>;
  /** The postmaster's pid (from postmaster.pid), undefined when it is not running. */
  pid(): number | undefined;
  /** Starts the server again after kill() or a stop without cleanup. */
  start(): Promise<void>;
  /** `pg_ctl stop -m fast`, then removes the temp directory. */
  stop(): Promise<void>;
  /** SIGKILL of the postmaster (a crash), waiting until it is gone; the directory stays. */
  kill(): Promise<void>;
}

let databases = 0;
/** The servers this process started (a primary or a standby, pg-standby.ts) and has not stopped. */
export const live = new Set<{ pid(): number | undefined; readonly dataDir: string }>();

// A test file that crashes must not leave a postmaster behind.
process.once('exit', () => {
  for (const server of live) {
    const pid = server.pid();
    if (pid !== undefined) {
      try { process.kill(pid, 'SIGQUIT'); } catch { /* already gone */ }
    }
    try { rmSync(server.dataDir, { recursive: true, force: true }); } catch { /* best effort */ }
  }
});

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PostgresServer> {
  const sharedUrl = process.env[SHARED_PG_ENV];
  if (sharedUrl && opts.own !== true && opts.fsync !== true && opts.settings === undefined) return sharedView(sharedUrl);
  return startOwnPostgres(opts);
}

/** A fresh database name, unique across the test processes sharing one cluster. */
function databaseName(): string {
  return `t${process.pid}_${++databases}_${Math.random().toString(36).slice(2, 8)}`;
}

/** The databases of one test file on the run's shared cluster; the cluster itself is the runner's. */
function sharedView(adminUrl: string): PostgresServer {
  const base = new URL(adminUrl);
  const url = (db: string): string => {
    const u = new URL(base);
    u.pathname = `/${db}`;
    return u.toString();
  };
  const mine: string[] = [];
  let admin: postgres.Sql | undefined;
  const notOwn = (what: string): never => {
    throw new Error(`${what} on the shared test PostgreSQL: a test that stops, kills or restarts its server calls startPostgres({ own: true })`);
  };
  return {
    url: adminUrl,
    port: Number(base.port),
    dataDir: '',
    async createDatabase(name) {
      const db = name ?? databaseName();
      admin ??= postgres(adminUrl, { max: 1, idle_timeout: 1, onnotice: () => undefined });
      await admin.unsafe(`CREATE DATABASE "${db}"`);
      mine.push(db);
      return url(db);
    },
    pid: () => notOwn('pid()'),
    start: async () => notOwn('start()'),
    kill: async () => notOwn('kill()'),
    async stop() {
      // Pools a test left open are ended by FORCE; a failure here only leaves a database behind
      // in a cluster the runner removes at the end of the run.
      if (admin !== undefined) {
        for (const db of mine.splice(0)) await admin.unsafe(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`).catch(() => undefined);
        await admin.end({ timeout: 1 }).catch(() => undefined);
        admin = undefined;
      }
    },
  };
}

async function startOwnPostgres(opts: StartPostgresOptions): Promise<PostgresServer> {
  const dir = await mkdtemp(join(tmpdir(), 'poplar-pg-'));
  chownToPostgres(dir);
  const data = join(dir, 'data');
  await runPg('initdb', ['-D', data, '-U', 'poplar', '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync', '--no-instructions']);
  const settings: Record<string, string> = {
    listen_addresses: "'127.0.0.1'",
    unix_socket_directories: `'${dir}'`,
    fsync: opts.fsync === true ? 'on' : 'off',
    full_page_writes: opts.fsync === true ? 'on' : 'off',
    shared_buffers: '16MB',
    max_connections: '200',
    ...opts.settings,
  };
  const conf = Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join('\n');
  await writeFile(join(data, 'postgresql.auto.conf'), `${conf}\n`);
  chownToPostgres(join(data, 'postgresql.auto.conf'));
  const log = join(dir, 'server.log');
  let port = 0;
  let admin: postgres.Sql | undefined;

  const pid = (): number | undefined => postmasterPid(data);
  const start = async (): Promise<void> => {
    port = await pgCtlStart(data, log, port);
  };
  await start();
  const url = (db: string): string => `postgres://poplar@127.0.0.1:${port}/${db}`;

  const server: PostgresServer = {
    get url() { return url('postgres'); },
    get port() { return port; },
    dataDir: dir,
    async createDatabase(name) {
      const db = name ?? databaseName();
      // Closed when idle, so a server kept for the whole file never keeps the process alive.
      admin ??= postgres(url('postgres'), { max: 1, idle_timeout: 1, onnotice: () => undefined });
      await admin.unsafe(`CREATE DATABASE "${db}"`);
      return url(db);
    },
    pid,
    start,
    async stop() {
      live.delete(server);
      await admin?.end({ timeout: 1 }).catch(() => undefined);
      admin = undefined;
      if (pid() !== undefined) await runPg('pg_ctl', ['stop', '-w', '-m', 'fast', '-D', data]).catch(() => server.kill());
      rmSync(dir, { recursive: true, force: true });
    },
    async kill() {
      await admin?.end({ timeout: 0 }).catch(() => undefined);
      admin = undefined;
      const p = pid();
      if (p === undefined) return;
      process.kill(p, 'SIGKILL');
      while (alive(p)) await new Promise((r) => setTimeout(r, 20));
    },
  };
  live.add(server);
  return server;
}

/** The last 4000 characters of a server log, for an error message ('' if there is none). */
function readLog(path: string): string {
  try {
    return readFileSync(path, 'utf8').slice(-4000);
  } catch {
    return '';
  }
}

/** Gives the directory to the `postgres` user when the tests run as root (else nothing to do). */
export function chownToPostgres(path: string): void {
  if (!asRoot) return;
  const { uid, gid } = postgresIds();
  chownSync(path, uid, gid);
}

/** The running postmaster's pid from `<data>/postmaster.pid`, undefined when it is not running. */
export function postmasterPid(data: string): number | undefined {
  try {
    const n = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(n) && n > 0 && alive(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `pg_ctl start -w` of `data` on `port`, or (port 0) on a free low loopback port, trying another
 * one if a process took it between the probe and the bind; resolves with the port.
 */
export async function pgCtlStart(data: string, log: string, port = 0): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const candidate = port === 0 ? await freeLowPort() : port;
    try {
      await runPg('pg_ctl', ['start', '-w', '-t', '60', '-D', data, '-l', log, '-o', `-p ${candidate}`]);
      return candidate;
    } catch (err) {
      if (port !== 0 || attempt >= 5) throw new Error(`${(err as Error).message}\n${readLog(log)}`);
    }
  }
}

let shared: Promise<PostgresServer> | undefined;

/**
 * A PostgresMailStore on a fresh, migrated database of a PostgreSQL started once per process
 * (removed at exit): what `startTestServer({ store: 'postgres' })` and `POPLAR_TEST_STORE=postgres`
 * use, so socket tests run unchanged on PostgreSQL.
 */
export async function postgresTestStore(): Promise<PostgresMailStore> {
  const reason = needPostgres();
  if (reason !== false) throw new Error(reason);
  shared ??= startPostgres();
  const url = await (await shared).createDatabase();
  const sql = connectPostgres({ url, poolSize: 4 });
  await migrate(sql);
  return new PostgresMailStore({ sql, ownsPool: true });
}

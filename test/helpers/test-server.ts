/**
 * A real poplar server on 127.0.0.1, port 0, for socket-level tests: memory store by default,
 * users with real scrypt hashes (cheap cost), and every log line captured so tests can assert on
 * the summary line and that no secret is ever logged.
 *
 * R-X16: with POPLAR_TEST_WORKERS above 1 (TEST_WORKERS) the server is a real `poplar serve` with
 * that many worker processes instead (test-server-process.ts), behind the same handle; a test
 * whose options only exist in-process (a fake clock, an injected object) says why in `inProcess`
 * and runs in this process in both passes.
 */
import { Writable } from 'node:stream';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type OperationsOptions, type PoplarServer, type PoplarServerOptions } from '../../src/server.js';
import type { SessionSettings } from '../../src/session/context.js';
import type { MailStore } from '../../src/storage/mail-store.js';
import type { UserDirectory, UserRecord } from '../../src/auth/directory.js';
import { MemoryMailStore } from '../../src/storage/memory/memory-store.js';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import { makeCredentials } from '../../src/auth/credentials.js';
import type { TokenVerifier } from '../../src/auth/sasl/token-verifier.js';
import { TlsProvider, type TlsVersion } from '../../src/net/tls.js';
import { testCerts } from './certs.js';
import { createLogger } from '../../src/observability/logger.js';
import { TEST_WORKERS } from './poplar-process.js';
import { PostgresDirectory } from '../../src/auth/postgres-directory.js';
import { PostgresPollState } from '../../src/policy/postgres-poll-state.js';
import { PostgresOverrides } from '../../src/policy/postgres-user-policy.js';
import { UserPolicies, type EffectivePolicy } from '../../src/policy/user-policy.js';
import { connectPostgres, type PostgresOptions, type Sql } from '../../src/storage/postgres/client.js';

export const TEST_SCRYPT_COST = 10;

export const DEFAULT_TEST_SETTINGS: SessionSettings = {
  maxCommandLength: 512,
  timeoutUnauthenticatedMs: 60_000,
  timeoutAuthenticatedMs: 1_800_000,
  lockMode: 'snapshot',
  lastCommand: false,
  maxBadCommands: 20,
  maxAuthFailures: 3,
  hostname: 'test.example',
  apop: false,
  mechanisms: ['PLAIN', 'LOGIN', 'CRAM-MD5', 'SCRAM-SHA-256', 'NTLM'],
  masterUsers: [],
  workarounds: [],
  deleteMode: 'expunge',
};

export interface TestUser {
  readonly password: string;
  readonly grants?: readonly string[];
}

export class MapDirectory implements UserDirectory {
  constructor(private readonly records: Map<string, UserRecord>) {}
  async lookup(name: string): Promise<UserRecord | undefined> {
    return this.records.get(name);
  }
}

export interface TestServer {
  readonly port: number;
  /** The POP3S port when started with `tls` (0 otherwise). */
  readonly tlsPort: number;
  /** Worker processes serving it: 1 in-process, TEST_WORKERS for a `poplar serve` process. */
  readonly workers: number;
  /** The in-process server; throws for a `poplar serve` process (use sessions() and stop()). */
  readonly server: PoplarServer;
  /** The server's store, or for a `poplar serve` process the same Maildir opened in this process. */
  readonly store: MailStore;
  /** Sessions open now on the whole server (every worker). */
  sessions(): Promise<number>;
  /** Stops the server (sessions end without UPDATE); close() still cleans up. */
  stop(): Promise<void>;
  /**
   * R-S20: loads the certificate and token key files again, as SIGHUP does (for a `poplar serve`
   * process: SIGHUP, resolved once the primary logs `config_reloaded`, every worker having applied it).
   */
  reload(): Promise<void>;
  /** Parsed JSON log lines so far. */
  readonly logs: Array<Record<string, unknown>>;
  /** Raw log text so far (to prove secrets never appear). */
  logText(): string;
  close(): Promise<void>;
}

export interface TestTls {
  readonly clientCa?: boolean;
  readonly minVersion?: TlsVersion;
  /** Certificate and key files the test made (default: test/helpers/certs.ts's). */
  readonly cert?: string;
  readonly key?: string;
}

export interface TestServerOptions {
  readonly settings?: Partial<SessionSettings>;
  readonly users?: Record<string, TestUser>;
  /**
   * 'memory' (default; `POPLAR_TEST_STORE=maildir|postgres` changes the default), 'maildir' (a fresh
   * temp folder), 'postgres' (a fresh database on the file's PostgreSQL, test/helpers/postgres.ts),
   * or a store the test made.
   */
  readonly store?: 'memory' | 'maildir' | 'postgres' | MailStore;
  /** log2 scrypt cost for the users' hashes and the dummy check (default TEST_SCRYPT_COST). */
  readonly scryptCost?: number;
  /** TLS with the test certificates (or the files `cert` and `key`): STLS, and POP3S on another port (`tlsPort`). */
  readonly tls?: boolean | TestTls | TlsProvider;
  /** R-S14 trusted networks (default: loopback, as the server's default). */
  readonly trustedNetworks?: readonly string[];
  readonly tokens?: TokenVerifier;
  /** A directory the test made (PostgreSQL); `users` and `records` are then not used. */
  readonly directory?: UserDirectory;
  /**
   * R-X17: a migrated database (test/helpers/pg-pool.ts) holding the directory, the per-user
   * policy overrides and the poll state, as `auth.directory = "postgres"` makes them (compose.ts),
   * with `policyDefaults` as the server-wide defaults; `users` and `records` are then not used. A URL
   * gets a pool of test/helpers/pg-pool.ts; options give the pool's size and timeouts.
   */
  readonly postgres?: string | PostgresOptions;
  /** With `postgres`: the server-wide policy defaults (quota, retention, LOGIN-DELAY, download cap); default none. */
  readonly policyDefaults?: Partial<EffectivePolicy>;
  /** Records used as they are (Dovecot hashes, missing credentials), besides `users`. */
  readonly records?: readonly UserRecord[];
  /**
   * R-X9 failed-login delay; default off (base 0) so tests that fail logins stay fast. The
   * brute-force tests set a small base.
   */
  readonly failureDelay?: PoplarServerOptions['failureDelay'];
  /** R-X10: per-user policy (CAPA, LOGIN-DELAY, download cap), its state, and the clock. */
  readonly policy?: PoplarServerOptions['policy'];
  readonly pollState?: PoplarServerOptions['pollState'];
  readonly now?: () => number;
  /** R-X9/R-X13: connection caps, PROXY networks, greeting; and the shutdown deadline. */
  readonly operations?: OperationsOptions;
  readonly shutdownTimeoutMs?: number;
  /** Listen on this host instead of 127.0.0.1 (e.g. '::1'). */
  readonly host?: string;
  /** A Maildir root the test made: maildrop `m` in `<maildir>/m` (instead of `store`). */
  readonly maildir?: string;
  /**
   * R-X16: why this server must run in the test process even when POPLAR_TEST_WORKERS asks for
   * `poplar serve` processes (a fake clock, an injected fake or spy); without it such options fail.
   */
  readonly inProcess?: string;
}

/** The server-wide policy defaults of `postgres`: none, as the configuration's defaults. */
export const NO_POLICY: EffectivePolicy = { quotaBytes: 0, quotaMessages: 0, retrievedDays: 0, unretrievedDays: 0, loginDelay: 0, downloadBytesPerDay: 0 };

/** The failed-login delay of the test server unless a test asks for one: none. */
export const NO_FAILURE_DELAY = { baseMs: 0, maxMs: 0, windowMs: 60_000 } as const;

/** The store of a test that names none: `POPLAR_TEST_STORE` (memory, maildir, postgres), else memory. */
function defaultStore(): 'memory' | 'maildir' | 'postgres' {
  const env = process.env['POPLAR_TEST_STORE'];
  return env === 'maildir' || env === 'postgres' ? env : 'memory';
}

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const users = opts.users ?? { alice: { password: 'wonderland' } };
  const cost = opts.scryptCost ?? TEST_SCRYPT_COST;
  const records = new Map<string, UserRecord>();
  for (const [name, u] of Object.entries(users)) {
    // Every credential a mechanism may need (SCRAM keys, NT hash, shared secret), as `poplar user` writes them.
    const made = await makeCredentials(u.password, { cost, needs: { scram: true, nt: true, cram: true, secret: true } });
    records.set(name, { name, password: made.password, grants: u.grants ?? [], credentials: made.credentials });
  }
  for (const r of opts.records ?? []) records.set(r.name, r);
  if (TEST_WORKERS > 1 && opts.inProcess === undefined) {
    return (await import('./test-server-process.js')).startServeProcess(opts, records);
  }
  let tls: TlsProvider | undefined;
  if (opts.tls instanceof TlsProvider) tls = opts.tls;
  else if (opts.tls !== undefined && opts.tls !== false) {
    const certs = await testCerts();
    const o = opts.tls === true ? {} : opts.tls;
    tls = await TlsProvider.load({ cert: o.cert ?? certs.cert, key: o.key ?? certs.key, minVersion: o.minVersion ?? 'TLSv1.2', clientCa: o.clientCa ? certs.ca : '' });
  }
  let tempDir: string | undefined;
  let store: MailStore;
  const kind = opts.store ?? defaultStore();
  if (opts.maildir !== undefined) {
    const root = opts.maildir;
    store = new MaildirStore({ path: (m) => join(root, m) });
  } else if (kind === 'postgres') {
    store = await (await import('./postgres.js')).postgresTestStore();
  } else if (kind === 'maildir') {
    const dir = await mkdtemp(join(tmpdir(), 'poplar-e2e-'));
    tempDir = dir;
    store = new MaildirStore({ path: (m) => join(dir, m) });
  } else {
    store = kind === 'memory' ? new MemoryMailStore() : kind;
  }
  let text = '';
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const s = chunk.toString();
      text += s;
      for (const line of s.split('\n')) if (line.trim() !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  let { directory, policy, pollState } = opts;
  let ownPool: Sql | undefined;
  if (opts.postgres !== undefined) {
    const pg = opts.postgres;
    const sql = typeof pg === 'string' ? (await import('./pg-pool.js')).poolOn(pg) : (ownPool = connectPostgres(pg));
    directory ??= new PostgresDirectory(sql);
    policy ??= new UserPolicies(new PostgresOverrides(sql), { ...NO_POLICY, ...opts.policyDefaults });
    pollState ??= new PostgresPollState(sql);
  }
  const server = await startServer({
    listen: [{ host: opts.host ?? '127.0.0.1', port: 0 }],
    settings: { ...DEFAULT_TEST_SETTINGS, ...opts.settings },
    ...opts.operations,
    ...(opts.shutdownTimeoutMs === undefined ? {} : { shutdownTimeoutMs: opts.shutdownTimeoutMs }),
    directory: directory ?? new MapDirectory(records),
    store,
    logger: createLogger('debug', sink),
    scryptCost: cost,
    failureDelay: opts.failureDelay ?? NO_FAILURE_DELAY,
    ...(policy === undefined ? {} : { policy }),
    ...(pollState === undefined ? {} : { pollState }),
    ...(opts.now === undefined ? {} : { now: opts.now }),
    ...(tls === undefined ? {} : { tls, tlsListen: [{ host: '127.0.0.1', port: 0 }] }),
    ...(opts.trustedNetworks === undefined ? {} : { trustedNetworks: opts.trustedNetworks }),
    ...(opts.tokens === undefined ? {} : { tokens: opts.tokens }),
  });
  return {
    port: server.addresses()[0]!.port,
    tlsPort: server.tlsAddresses()[0]?.port ?? 0,
    workers: 1,
    server,
    store,
    sessions: async () => server.sessionCount,
    stop: () => server.close(),
    async reload() {
      await Promise.all([tls?.reload(), opts.tokens?.reload()]);
    },
    logs,
    logText: () => text,
    async close() {
      await server.close();
      await store.close();
      await ownPool?.end({ timeout: 1 });
      if (tempDir !== undefined) await rm(tempDir, { recursive: true, force: true });
    },
  };
}

export { waitFor } from './wait.js';

/** Runs `fn` against a fresh server and always closes it, so a failing test cannot hang the run. */
export async function withServer<T>(opts: TestServerOptions, fn: (t: TestServer) => Promise<T>): Promise<T> {
  const t = await startTestServer(opts);
  try {
    return await fn(t);
  } finally {
    await t.close();
  }
}

/**
 * R-X16: the test server of test-server.ts as a real `poplar serve` with `server.workers` =
 * TEST_WORKERS, for the e2e suite's second pass (POPLAR_TEST_WORKERS=2): the same handle, so a
 * test proves its behaviour across worker processes without a change.
 *
 * The options become `-o key=value` overrides: settings, limits, delays, TLS files, OAuth issuers,
 * the users file (with every credential and grant), and the Maildir root. The configuration is then
 * loaded through the schema here too, and what `poplar serve` derives from it (serve.ts
 * sessionSettings, serve-operations.ts operationsOptions) must equal what the test asked for: an
 * option the configuration cannot express (an authenticated timeout under the schema's 600 s
 * minimum, a fake clock, an injected object) fails the test with its name, never silently
 * differs. Such a test passes `inProcess` with its reason and runs in-process in both passes.
 *
 * The memory store is one process's memory (`poplar serve` runs it in one process), so the
 * default store here is a Maildir in a temp folder; the test's `store` handle opens the same
 * Maildir in the test process, as another delivering process would.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { PasswdFile } from '../../src/auth/passwd-file.js';
import type { UserRecord } from '../../src/auth/directory.js';
import type { TokenVerifierOptions } from '../../src/auth/sasl/token-verifier.js';
import { defaultsFrom, postgresOptions } from '../../src/cli/compose.js';
import { sessionSettings } from '../../src/cli/serve.js';
import { operationsOptions } from '../../src/cli/serve-operations.js';
import { loadConfig } from '../../src/config/load.js';
import type { OperationsOptions } from '../../src/server.js';
import type { SessionSettings } from '../../src/session/context.js';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import { UNLIMITED } from '../../src/shared/shared-state.js';
import { TlsProvider } from '../../src/net/tls.js';
import { testCerts } from './certs.js';
import { waitFor } from './wait.js';
import { startPoplar, TEST_WORKERS, type PoplarProcess } from './poplar-process.js';
import { DEFAULT_TEST_SETTINGS, NO_FAILURE_DELAY, NO_POLICY, type TestServer, type TestServerOptions, type TestTls } from './test-server.js';

type Value = string | number | boolean | readonly string[];

/** Each session setting's configuration key, and the key's value for a setting's value. */
const SETTING_KEYS: Record<keyof SessionSettings, readonly [string, (v: never) => Value] | undefined> = {
  maxCommandLength: ['pop3.max_command_length', (v: number) => v],
  timeoutUnauthenticatedMs: ['pop3.timeout_unauthenticated', (v: number) => v / 1000],
  timeoutAuthenticatedMs: ['pop3.timeout_authenticated', (v: number) => v / 1000],
  lockMode: ['pop3.lock_mode', (v: string) => v],
  lastCommand: ['pop3.last_command', (v: boolean) => v],
  maxBadCommands: ['pop3.max_bad_commands', (v: number) => v],
  maxAuthFailures: ['pop3.max_auth_failures', (v: number) => v],
  hostname: ['pop3.hostname', (v: string) => v],
  apop: ['auth.apop', (v: boolean) => v],
  mechanisms: ['auth.mechanisms', (v: readonly string[]) => v],
  masterUsers: ['auth.master_users', (v: readonly string[]) => v],
  loginTimeoutMs: ['pop3.login_timeout', (v: number) => v / 1000],
  protocolLog: ['log.protocol', (v: boolean) => v],
  workarounds: ['pop3.workarounds', (v: readonly string[]) => v],
  deleteMode: ['pop3.delete_mode', (v: string) => v],
  // Set by an LDAP directory's master attribute: no test-server option.
  directoryMasters: undefined,
};

/** An override as `poplar serve -o` reads it: a TOML value (JSON's strings, arrays and numbers are TOML's too). */
const override = (key: string, value: Value): string => `${key}=${JSON.stringify(value)}`;

/** Why these options cannot run in a `poplar serve` process, or undefined when they can. */
export function inProcessOnly(opts: TestServerOptions): string | undefined {
  if (opts.now !== undefined) return 'a fake clock (`now`)';
  if (opts.policy !== undefined || opts.pollState !== undefined) return 'an injected policy or poll state';
  if (opts.directory !== undefined) return 'an injected directory';
  if (typeof opts.store === 'object') return 'an injected store (pass `maildir: root` for a Maildir the test made)';
  if (opts.store === 'postgres') return 'the postgres store (its database URL is the helper\'s own)';
  if (opts.tls instanceof TlsProvider) return 'an injected TlsProvider';
  return undefined;
}

/** The options as overrides, checked against what `poplar serve` makes of them. */
async function overridesFor(opts: TestServerOptions, dataDir: string, mailRoot: string): Promise<string[]> {
  const o: string[] = [
    'log.level=debug',
    override('storage.backend', 'maildir'),
    override('storage.maildir_path', join(mailRoot, '%u')),
    // The dummy hash's cost for unknown users: the schema's least (the users' own hashes are cheap).
    'auth.scrypt_cost=14',
    override('pop3.tls_listen', ['127.0.0.1:0']),
    'server.metrics_listen="127.0.0.1:0"',
  ];
  const pg = typeof opts.postgres === 'string' ? { url: opts.postgres } : opts.postgres;
  if (pg !== undefined) {
    o.push('auth.directory="postgres"', override('postgres.url', pg.url));
    if (pg.poolSize !== undefined) o.push(`postgres.pool_size=${pg.poolSize}`);
    if (pg.connectTimeout !== undefined) o.push(`postgres.connect_timeout=${pg.connectTimeout}`);
    if (pg.statementTimeout !== undefined) o.push(`postgres.statement_timeout=${pg.statementTimeout}`);
  }
  if (opts.policyDefaults !== undefined && pg === undefined) throw new Error('test server policyDefaults are for a `postgres` server');
  const policy = { ...NO_POLICY, ...opts.policyDefaults };
  o.push(`quota.bytes=${policy.quotaBytes}`, `quota.messages=${policy.quotaMessages}`, `retention.retrieved_days=${policy.retrievedDays}`,
    `retention.unretrieved_days=${policy.unretrievedDays}`, `policy.login_delay=${policy.loginDelay}`, `policy.download_bytes_per_day=${policy.downloadBytesPerDay}`);
  if (opts.host !== undefined) o.push(override('pop3.listen', [`${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:0`]));
  const settings: SessionSettings = { loginTimeoutMs: 0, ...DEFAULT_TEST_SETTINGS, ...opts.settings };
  for (const [name, value] of Object.entries(settings) as Array<[keyof SessionSettings, never]>) {
    const entry = SETTING_KEYS[name];
    if (entry === undefined) throw new Error(`test server setting ${name} has no configuration key: give this test \`inProcess\``);
    o.push(override(entry[0], entry[1](value)));
  }
  const ops = opts.operations ?? {};
  const wanted: OperationsOptions = {
    limits: ops.limits ?? UNLIMITED,
    failureDelay: opts.failureDelay ?? NO_FAILURE_DELAY,
    shutdownTimeoutMs: opts.shutdownTimeoutMs ?? ops.shutdownTimeoutMs ?? 0,
    ...(ops.proxyNetworks === undefined ? {} : { proxyNetworks: ops.proxyNetworks }),
    ...(ops.greeting === undefined ? {} : { greeting: ops.greeting }),
    ...(ops.loginCache === undefined ? {} : { loginCache: ops.loginCache }),
    ...((opts.trustedNetworks ?? ops.trustedNetworks) === undefined ? {} : { trustedNetworks: opts.trustedNetworks ?? ops.trustedNetworks }),
  };
  const l = wanted.limits!;
  o.push(`pop3.max_connections=${l.maxConnections}`, `pop3.max_connections_per_ip=${l.maxConnectionsPerIp}`, `pop3.max_connections_per_user=${l.maxConnectionsPerUser}`);
  const d = wanted.failureDelay!;
  o.push(`auth.failure_delay=${d.baseMs}`, `auth.failure_delay_max=${d.maxMs}`, `auth.failure_window=${d.windowMs / 1000}`);
  o.push(`server.shutdown_timeout=${wanted.shutdownTimeoutMs! / 1000}`);
  if (wanted.proxyNetworks !== undefined) o.push(override('pop3.proxy_networks', wanted.proxyNetworks));
  if (wanted.greeting !== undefined) o.push(override('pop3.greeting', wanted.greeting));
  // The in-process server has no login cache unless a test asks for one.
  o.push(`auth.cache_ttl=${(wanted.loginCache?.ttlMs ?? 0) / 1000}`);
  if (wanted.loginCache !== undefined) o.push(`auth.cache_size=${wanted.loginCache.maxEntries}`);
  if (wanted.trustedNetworks !== undefined) o.push(override('auth.trusted_networks', wanted.trustedNetworks));
  if (opts.tls !== undefined && opts.tls !== false) {
    const certs = await testCerts();
    const t: TestTls = opts.tls === true ? {} : (opts.tls as TestTls);
    o.push(override('tls.cert', t.cert ?? certs.cert), override('tls.key', t.key ?? certs.key), override('tls.min_version', t.minVersion ?? 'TLSv1.2'));
    if (t.clientCa === true) o.push(override('tls.client_ca', certs.ca));
  } else {
    o.push(override('tls.cert', join(dataDir, 'no-certificate.pem')));
  }
  if (opts.tokens !== undefined) {
    // The verifier's own options (issuer, JWKS file, audience, claim): the server loads the same.
    const t = (opts.tokens as unknown as { opts: TokenVerifierOptions }).opts;
    o.push(override('oauth.issuers', t.issuers.map((i) => `${i.issuer} ${i.jwks}`)), override('oauth.audience', t.audience));
    if (t.userClaim !== undefined) o.push(override('oauth.user_claim', t.userClaim));
  }

  const config = loadConfig({ overrides: o, dataDir });
  const derived = sessionSettings(config);
  for (const name of Object.keys(settings) as Array<keyof SessionSettings>) {
    if (!isDeepStrictEqual(derived[name], settings[name])) {
      throw new Error(`test server setting ${name}=${JSON.stringify(settings[name])} became ${JSON.stringify(derived[name])} in poplar serve's configuration`);
    }
  }
  if (!isDeepStrictEqual(defaultsFrom(config), policy)) {
    throw new Error(`test server policy defaults ${JSON.stringify(policy)} became ${JSON.stringify(defaultsFrom(config))} in poplar serve's configuration`);
  }
  const pool = postgresOptions(config);
  for (const [name, value] of Object.entries(pg ?? {}) as Array<[keyof typeof pool, unknown]>) {
    if (pool[name] !== value) throw new Error(`test server postgres ${name}=${JSON.stringify(value)} became ${JSON.stringify(pool[name])} in poplar serve's configuration`);
  }
  const served = operationsOptions(config);
  for (const name of Object.keys(wanted) as Array<keyof OperationsOptions>) {
    if (!isDeepStrictEqual(served[name], wanted[name])) {
      throw new Error(`test server option ${name}=${JSON.stringify(wanted[name])} became ${JSON.stringify(served[name])} in poplar serve's configuration`);
    }
  }
  return o;
}

/** The users file `auth.users_file` of a fresh data folder: every credential and grant the in-process directory holds. */
async function writeUsers(dataDir: string, records: Iterable<UserRecord>): Promise<void> {
  const file = new PasswdFile(loadConfig({ dataDir }).auth.users_file);
  for (const r of records) {
    await file.add(r.name, r.password, r.credentials);
    for (const g of r.grants) await file.grant(r.name, g);
  }
}

export async function startServeProcess(opts: TestServerOptions, records: Map<string, UserRecord>): Promise<TestServer> {
  const why = inProcessOnly(opts);
  if (why !== undefined) throw new Error(`POPLAR_TEST_WORKERS=${TEST_WORKERS}: this test server needs ${why}; give the test \`inProcess\` with the reason`);
  const dataDir = await mkdtemp(join(tmpdir(), 'poplar-e2e-serve-'));
  const mailRoot = opts.maildir ?? join(dataDir, 'mail');
  let p: PoplarProcess;
  try {
    const overrides = await overridesFor(opts, dataDir, mailRoot);
    await writeUsers(dataDir, records.values());
    p = await startPoplar({ dataDir, users: {}, overrides, workers: TEST_WORKERS });
  } catch (e) {
    await rm(dataDir, { recursive: true, force: true });
    throw e;
  }
  const store = new MaildirStore({ path: (m) => join(mailRoot, m) });
  return {
    port: p.pop3Port,
    tlsPort: p.tlsPort,
    workers: TEST_WORKERS,
    get server(): never {
      throw new Error('t.server is the in-process server; this one is a poplar serve process: use t.sessions() or t.stop()');
    },
    store,
    get logs() {
      return p.logs();
    },
    logText: () => p.output(),
    async sessions() {
      const health = await fetch(`http://127.0.0.1:${p.metricsPort}/health`);
      return Number(((await health.json()) as { sessions: unknown }).sessions);
    },
    stop: () => p.stop(),
    async reload() {
      const seen = p.events('config_reloaded').length;
      p.child.kill('SIGHUP');
      await waitFor(() => p.events('config_reloaded').length > seen, 10_000, 'config_reloaded');
    },
    async close() {
      const stopped = p.stop();
      const timer = setTimeout(() => void p.kill(), 15_000);
      await stopped;
      clearTimeout(timer);
      await store.close();
      await p.cleanup();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The composition root: the one place that builds poplar's parts from the configuration and picks
 * their concrete classes (DESIGN.md: "directories and stores are chosen by the composition root
 * only"): the user directory, the mail store, the per-user policies, the delivery agent, the
 * retention sweeper, the poll state, TLS and the token verifier, the GSSAPI acceptor, the server secret.
 *
 * `poplar serve` (serve.ts) and every management subcommand build their parts here. This module
 * imports nothing of server.ts, session/, commands/ or net/listener.ts: only serve.ts imports the
 * server, so a management subcommand never loads it (test/structure/composition.test.ts). The
 * subcommands import this module on demand (`await import('./compose.js')`), so `poplar --help`
 * loads none of the parts.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostname as osHostname } from 'node:os';
import type { AdminDirectory, ManagedDirectory } from '../auth/directory.js';
import { PasswdFile } from '../auth/passwd-file.js';
import { PostgresDirectory } from '../auth/postgres-directory.js';
import type { TokenVerifier } from '../auth/sasl/token-verifier.js';
import type { GssapiAcceptor } from '../auth/sasl/gssapi.js';
import { parseListen, type Config, type ListenAddress } from '../config/load.js';
import { DeliveryAgent } from '../delivery/agent.js';
import { TlsProvider, type TlsFiles } from '../net/tls.js';
import type { Logger } from '../observability/logger.js';
import { PollState, type PollStore } from '../policy/poll-state.js';
import { PostgresPollState } from '../policy/postgres-poll-state.js';
import { PostgresOverrides } from '../policy/postgres-user-policy.js';
import { RetentionSweeper } from '../policy/retention.js';
import { UserPolicies, type EffectivePolicy } from '../policy/user-policy.js';
import type { MailStore } from '../storage/mail-store.js';
import { MaildirStore } from '../storage/maildir/maildir-store.js';
import { MemoryMailStore } from '../storage/memory/memory-store.js';
import { connectPostgres, type PostgresOptions, type Sql } from '../storage/postgres/client.js';
import { checkSchema } from '../storage/postgres/migrate.js';
import { ClusterLease } from '../storage/postgres/pg-lease.js';
import { PostgresSharedState, releaseHolder } from '../storage/postgres/pg-shared-state.js';
import { PostgresMailStore } from '../storage/postgres/pg-store.js';
import type { SharedSettings, SharedState } from '../shared/shared-state.js';
import { CliError } from './common.js';

/** The host name of greetings, trace headers and quota warnings (`pop3.hostname`, else the system's). */
export function serverHostname(config: Config): string {
  return config.pop3.hostname === '' ? osHostname() : config.pop3.hostname;
}

/**
 * The directory poplar owns: `auth.users_file`, or with `auth.directory = "postgres"` the database
 * (R-X17). With LDAP (openDirectory) the users file still holds the grants (R-K3). The per-user
 * policy (createPolicies) and the poll state (createPollState) follow the same choice.
 */
export function createDirectory(config: Config): ManagedDirectory & AdminDirectory {
  if (config.auth.directory === 'postgres') return new PostgresDirectory(postgresPool(config));
  return new PasswdFile(config.auth.users_file);
}

/** The user directory of `auth.directory`, as the server, delivery and the admin commands use it. */
export type Directory = AdminDirectory & {
  /** The quota the directory gives a maildrop (LDAP `quota_attribute`), under a `poplar quota set` value. */
  quotaOf?(maildrop: string): number | undefined;
  close?(): Promise<void>;
};

/** A file named by a setting, read whole; a CliError naming the setting when it cannot be. */
async function settingFile(key: string, path: string): Promise<string> {
  return readFile(path, 'utf8').catch((e: unknown) => {
    throw new CliError(`cannot read ${key} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  });
}

/**
 * Opens the user directory: the users file, or the LDAP directory (R-X19; ldapts is loaded only
 * then). `warn` gets the directory's notices (entries skipped). Close it with `close` when done.
 */
export async function openDirectory(config: Config, warn?: (message: string) => void): Promise<Directory> {
  const users = createDirectory(config);
  if (config.auth.directory !== 'ldap') return users;
  const l = config.ldap;
  const urls = l.url.split(/\s+/).filter((u) => u !== '');
  if (urls.length === 0) throw new CliError('auth.directory = "ldap" needs ldap.url');
  if (l.base_dn === '') throw new CliError('auth.directory = "ldap" needs ldap.base_dn');
  const bindPassword = l.bind_password_file === ''
    ? l.bind_password
    : (await settingFile('ldap.bind_password_file', l.bind_password_file)).split(/\r?\n/)[0]!;
  const ca = l.ca_file === '' ? undefined : await settingFile('ldap.ca_file', l.ca_file);
  const { LdapDirectory } = await import('../auth/ldap-directory.js');
  return new LdapDirectory({
    server: { urls, timeoutMs: l.timeout_ms, starttls: l.starttls, ca },
    baseDn: l.base_dn,
    userFilter: l.user_filter,
    bindDn: l.bind_dn,
    bindPassword,
    passwordMode: l.password_mode,
    attributes: {
      user: l.user_attribute, mail: l.mail_attribute, maildrop: l.maildrop_attribute,
      quota: l.quota_attribute, master: l.master_attribute, password: l.password_attribute,
    },
    grants: async (name) => (await users.lookup(name))?.grants ?? [],
    ...(warn === undefined ? {} : { warn }),
  });
}

/** Runs `use` on the open directory and closes it (the admin commands). */
export async function withDirectory<T>(config: Config, use: (directory: Directory) => Promise<T>): Promise<T> {
  const directory = await openDirectory(config);
  try {
    return await use(directory);
  } finally {
    await directory.close?.();
  }
}

/** `logger`: where the Maildir store reports the symbolic links it leaves out. */
export function createStore(config: Config, logger?: Logger): MailStore {
  if (config.storage.backend === 'memory') return new MemoryMailStore();
  if (config.storage.backend === 'postgres') {
    if (config.postgres.url === '') throw new CliError('storage.backend = "postgres" needs postgres.url (the database URL)');
    return new PostgresMailStore({ sql: postgresPool(config), leaseSeconds: config.postgres.lease_seconds });
  }
  const template = config.storage.maildir_path;
  return new MaildirStore({
    path: (mailbox) => template.replaceAll('%u', () => mailbox),
    reads: config.storage.maildir_reads,
    dirtyWindowMs: config.storage.maildir_dirty_window,
    ...(logger === undefined ? {} : { logger }),
  });
}

/**
 * Waits until the store can serve: for PostgreSQL, the schema is the one this poplar knows (a node
 * refuses to start on a database not migrated, or migrated by a newer poplar, with the reason).
 */
export async function storeReady(store: MailStore): Promise<void> {
  if (!(store instanceof PostgresMailStore)) return;
  await store.ready().catch(async (err: unknown) => {
    await store.close().catch(() => undefined);
    throw new CliError(`cannot use the database: ${(err as Error).message}`);
  });
}

/** The pool settings of `[postgres]`, for every part of poplar that keeps data in PostgreSQL. */
export function postgresOptions(config: Config): PostgresOptions {
  return {
    url: config.postgres.url,
    poolSize: config.postgres.pool_size,
    connectTimeout: config.postgres.connect_timeout,
    statementTimeout: config.postgres.statement_timeout,
  };
}

/** The pools of this process by their settings: the store, directory, policies and poll state share one. */
const pools = new Map<string, Sql>();

/** The process's pool to `postgres.url` (connections open on first use). */
export function postgresPool(config: Config): Sql {
  const opts = postgresOptions(config);
  if (opts.url === '') throw new CliError('postgres.url is not set: name the database in [postgres] url = "postgres://…"');
  const key = JSON.stringify(opts);
  let sql = pools.get(key);
  if (sql === undefined) pools.set(key, (sql = connectPostgres(opts)));
  return sql;
}

/** Ends every pool postgresPool opened (a server's stop). */
export async function closePostgres(): Promise<void> {
  const open = [...pools.values()];
  pools.clear();
  await Promise.all(open.map((sql) => sql.end({ timeout: 5 })));
}

/**
 * At a node's start with `auth.directory = "postgres"`: refuses a database whose schema this
 * poplar does not know, or that lacks a migration, with the one-line reason storeReady gives.
 */
export async function checkDatabase(config: Config): Promise<void> {
  if (config.auth.directory !== 'postgres') return;
  await checkSchema(postgresPool(config)).catch((err: unknown) => {
    throw new CliError(`cannot use the database: ${(err as Error).message}`);
  });
}

/** The server-wide defaults of the per-user policy (R-S16, R-S18, R-X10). */
export function defaultsFrom(config: Config): EffectivePolicy {
  return {
    quotaBytes: config.quota.bytes,
    quotaMessages: config.quota.messages,
    retrievedDays: config.retention.retrieved_days,
    unretrievedDays: config.retention.unretrieved_days,
    loginDelay: config.policy.login_delay,
    downloadBytesPerDay: config.policy.download_bytes_per_day,
  };
}

/**
 * The per-user overrides: `policy.users_file`, or the database with `auth.directory = "postgres"`.
 * `directory`: the one whose quotas (LDAP `quota_attribute`) apply under the overrides' values.
 */
export function createPolicies(config: Config, directory?: Directory): UserPolicies {
  const source = config.auth.directory === 'postgres' ? new PostgresOverrides(postgresPool(config)) : config.policy.users_file;
  const quotaOf = directory?.quotaOf?.bind(directory);
  return new UserPolicies(source, defaultsFrom(config), quotaOf);
}

/** `policies`: the server's shared instance, so a reload's new defaults reach delivery too. */
export function createAgent(config: Config, store: MailStore, directory: Directory, logger: Logger, policies = createPolicies(config, directory)): DeliveryAgent {
  return new DeliveryAgent({
    store,
    directory,
    policies,
    logger,
    hostname: serverHostname(config),
    overQuota: config.quota.over_quota,
    warnPercent: config.quota.warn_percent,
    recipientDelimiter: config.lmtp.recipient_delimiter,
  });
}

/** Every maildrop retention looks at: each user's own and the mailboxes granted to users (R-K3). */
async function allMailboxes(directory: Directory): Promise<string[]> {
  const users = await directory.list();
  return [...new Set(users.flatMap((u) => [u.maildrop ?? u.name, ...u.grants]))].sort();
}

export function createSweeper(
  config: Config, store: MailStore, directory: Directory, logger: Logger, now?: () => number, policies = createPolicies(config, directory),
): RetentionSweeper {
  return new RetentionSweeper({
    store,
    policies,
    mailboxes: () => allMailboxes(directory),
    logger,
    ...(now === undefined ? {} : { now }),
    // R-X17: one scheduled sweeper at a time among the nodes on one database.
    ...(store instanceof PostgresMailStore ? { lease: new ClusterLease(store.sql, 'retention-sweeper', config.postgres.lease_seconds) } : {}),
  });
}

/**
 * R-X17: with `storage.backend = "postgres"`, the shared state across the nodes on the database
 * (storage/postgres/pg-shared-state.ts) over `local`, which keeps the node's own parts (connection
 * caps, login cache); otherwise undefined (the node's state is the whole state).
 */
export async function createClusterState(config: Config, local: SharedState, settings: SharedSettings): Promise<PostgresSharedState | undefined> {
  if (config.storage.backend !== 'postgres') return undefined;
  return PostgresSharedState.open({ sql: postgresPool(config), local, leaseSeconds: config.postgres.lease_seconds, settings })
    .catch((err: unknown) => {
      throw new CliError(`cannot use the database for the shared state: ${(err as Error).message}`);
    });
}

/**
 * R-X10's poll state (last logins, today's downloads) in `policy.state_dir`, or in the database with
 * `auth.directory = "postgres"` (shared by every node); a change needs a restart. `refresh`: R-X16,
 * a worker of several re-checks each record's file (poll-state.ts).
 */
export function createPollState(config: Config, refresh = false): PollStore {
  if (config.auth.directory === 'postgres') return new PostgresPollState(postgresPool(config));
  return new PollState(config.policy.state_dir, { refresh });
}

/** R-X17: a dead worker's holder (session slots, claims) given back at once; never rejects. */
export async function releaseClusterHolder(config: Config, holder: string): Promise<void> {
  if (config.storage.backend !== 'postgres') return;
  await releaseHolder(postgresPool(config), holder).catch(() => undefined);
}

/**
 * The secret behind the fake SCRAM salts of unknown users, kept in `<data_dir>/server-secret`
 * (created once, mode 0600) so they look the same after a restart, as real users' salts do.
 */
export async function loadServerSecret(dataDir: string): Promise<Buffer> {
  const path = join(dataDir, 'server-secret');
  const existing = await readFile(path).catch(() => undefined);
  if (existing !== undefined && existing.length >= 32) return existing;
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // Written whole to a private file, then linked into place (link(2) fails if it exists): of the
  // worker processes starting at once on a new data directory, one secret wins and every process
  // uses it; each generating and keeping its own gave an unknown user a different SCRAM salt on
  // each worker (R-S13).
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, randomBytes(32), { mode: 0o600, flag: 'wx' });
  try {
    await link(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // A short file left by an older poplar is replaced; a whole one is another process's: use it.
    const other = await readFile(path);
    if (other.length >= 32) return other;
    await rename(tmp, path);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  return readFile(path);
}

// --- TLS and OAuth keys (R-X3, R-X4), loaded again on reload (R-S20) ---------------------------

/** What a reload of the security settings did. */
export interface SecurityReload {
  /** Files that did not load (the previous ones stay in use). */
  readonly errors: string[];
  /** Keys whose change needs a restart (a certificate appeared while TLS was off). */
  readonly restart: string[];
  /** The token verifier new sessions use: undefined when `oauth.issuers` is empty. */
  readonly tokens: TokenVerifier | undefined;
}

export interface Security {
  /** Certificates for POP3S and STLS; undefined: no certificate file, both are off. */
  readonly tls: TlsProvider | undefined;
  /** The POP3S addresses (`pop3.tls_listen`); empty when TLS is off. */
  readonly tlsListen: readonly ListenAddress[];
  /** OAUTHBEARER/XOAUTH2 token checks; undefined when no issuer is configured. */
  readonly tokens: TokenVerifier | undefined;
  /** Loads certificate, key, CA and JWKS again, from the files `next` names. */
  reload(next: Config): Promise<SecurityReload>;
}

const tlsFiles = (c: Config): TlsFiles => ({ cert: c.tls.cert, key: c.tls.key, minVersion: c.tls.min_version, clientCa: c.tls.client_ca });

/** `oauth.*` as TokenVerifier options; undefined when no issuer is configured. */
function tokenOptions(c: Config): Parameters<typeof TokenVerifier.create>[0] | undefined {
  if (c.oauth.issuers.length === 0) return undefined;
  const issuers = c.oauth.issuers.map((entry) => {
    const [issuer, jwks] = entry.split(' ') as [string, string];
    return { issuer, jwks };
  });
  return { issuers, audience: c.oauth.audience, userClaim: c.oauth.user_claim };
}

/** The token verifier (and jose behind it) is loaded only when an issuer is configured. */
async function createTokens(options: Parameters<typeof TokenVerifier.create>[0]): Promise<TokenVerifier> {
  const { TokenVerifier: Verifier } = await import('../auth/sasl/token-verifier.js');
  return Verifier.create(options);
}

/**
 * Loads the TLS certificate and the OAuth issuers' keys; `reload` loads them again without dropping
 * a session: new connections get the new certificate, key, lowest TLS version and client CA, new
 * sessions the new issuers. A reload that fails keeps what was loaded and says why.
 */
export async function loadSecurity(config: Config, logger: Logger): Promise<Security> {
  let tls: TlsProvider | undefined;
  if (existsSync(config.tls.cert)) {
    tls = await TlsProvider.load(tlsFiles(config)).catch((e: unknown) => {
      throw new CliError(`cannot load the TLS certificate ${config.tls.cert} / key ${config.tls.key}: ${(e as Error).message}`);
    });
  } else {
    logger.warn({ event: 'tls_off', cert: config.tls.cert }, 'no certificate: POP3S and STLS are off (make one with "poplar cert")');
  }
  let tokenConfig = tokenOptions(config);
  let tokens = tokenConfig === undefined
    ? undefined
    : await createTokens(tokenConfig).catch((e: unknown) => {
      throw new CliError(`cannot load oauth.issuers keys: ${(e as Error).message}`);
    });

  const reloadTokens = async (next: Config): Promise<void> => {
    const wanted = tokenOptions(next);
    if (JSON.stringify(wanted) === JSON.stringify(tokenConfig)) {
      await tokens?.reload();
      return;
    }
    tokens = wanted === undefined ? undefined : await createTokens(wanted);
    tokenConfig = wanted;
  };

  return {
    tls,
    tlsListen: tls === undefined ? [] : config.pop3.tls_listen.map(parseListen),
    tokens,
    async reload(next) {
      const restart: string[] = [];
      let reloadTls: Promise<void> | undefined;
      if (tls !== undefined) reloadTls = tls.reload(tlsFiles(next));
      else if (existsSync(next.tls.cert)) restart.push('tls.cert');
      const results = await Promise.allSettled([reloadTls, reloadTokens(next)]);
      const errors = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => String(r.reason));
      return { errors, restart, tokens };
    },
  };
}

// --- Kerberos (R-X20) ---------------------------------------------------------------------------

/**
 * The GSSAPI acceptor when `auth.mechanisms` names GSSAPI: service principal
 * `<auth.gssapi_service>@<pop3.hostname>`, keys from `auth.gssapi_keytab`. Without the native
 * addon or without realms GSSAPI stays off, and the log says why (`gssapi_off`).
 */
export async function createGssapi(config: Config, logger: Logger): Promise<GssapiAcceptor | undefined> {
  if (!config.auth.mechanisms.includes('GSSAPI')) return undefined;
  const off = (reason: string): undefined => {
    logger.warn({ event: 'gssapi_off', reason }, `GSSAPI is off: ${reason}`);
    return undefined;
  };
  if (config.auth.gssapi_realms.length === 0) return off('auth.gssapi_realms is empty');
  const { createGssapiAcceptor, keytabPath } = await import('../auth/sasl/gssapi-native.js');
  const acceptor = createGssapiAcceptor({
    keytab: config.auth.gssapi_keytab,
    service: config.auth.gssapi_service,
    hostname: serverHostname(config),
    realms: config.auth.gssapi_realms,
  });
  if (acceptor instanceof Error) return off(acceptor.message);
  if (!acceptor.usable()) {
    const keytab = keytabPath(config.auth.gssapi_keytab);
    logger.warn({ event: 'gssapi_keytab_unreadable', keytab }, `GSSAPI is not offered until the keytab ${keytab} is readable`);
  }
  return acceptor;
}

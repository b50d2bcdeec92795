/**
 * The composition root: the one place that builds poplar's parts from the configuration and picks
 * their concrete classes (DESIGN.md: "directories and stores are chosen by the composition root
 * only"): the user directory, the mail store, the per-user policies, the delivery agent, the
 * retention sweeper, the poll state, TLS and the token verifier, the server secret.
 *
 * `poplar serve` (serve.ts) and every management subcommand build their parts here. This module
 * imports nothing of server.ts, session/, commands/ or net/listener.ts: only serve.ts imports the
 * server, so a management subcommand never loads it (test/structure/composition.test.ts). The
 * subcommands import this module on demand (`await import('./compose.js')`), so `poplar --help`
 * loads none of the parts.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostname as osHostname } from 'node:os';
import { PasswdFile } from '../auth/passwd-file.js';
import type { TokenVerifier } from '../auth/sasl/token-verifier.js';
import { parseListen, type Config, type ListenAddress } from '../config/load.js';
import { DeliveryAgent } from '../delivery/agent.js';
import { TlsProvider, type TlsFiles } from '../net/tls.js';
import type { Logger } from '../observability/logger.js';
import { PollState } from '../policy/poll-state.js';
import { RetentionSweeper } from '../policy/retention.js';
import { UserPolicies, type EffectivePolicy } from '../policy/user-policy.js';
import type { MailStore } from '../storage/mail-store.js';
import { MaildirStore } from '../storage/maildir/maildir-store.js';
import { MemoryMailStore } from '../storage/memory/memory-store.js';
import { CliError } from './common.js';

/** The host name of greetings, trace headers and quota warnings (`pop3.hostname`, else the system's). */
export function serverHostname(config: Config): string {
  return config.pop3.hostname === '' ? osHostname() : config.pop3.hostname;
}

/** The user directory (`auth.users_file`). */
export function createDirectory(config: Config): PasswdFile {
  return new PasswdFile(config.auth.users_file);
}

/** `logger`: where the Maildir store reports the symbolic links it leaves out. */
export function createStore(config: Config, logger?: Logger): MailStore {
  if (config.storage.backend === 'memory') return new MemoryMailStore();
  const template = config.storage.maildir_path;
  return new MaildirStore({
    path: (mailbox) => template.replaceAll('%u', () => mailbox),
    reads: config.storage.maildir_reads,
    dirtyWindowMs: config.storage.maildir_dirty_window,
    ...(logger === undefined ? {} : { logger }),
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

export function createPolicies(config: Config): UserPolicies {
  return new UserPolicies(config.policy.users_file, defaultsFrom(config));
}

/** `policies`: the server's shared instance, so a reload's new defaults reach delivery too. */
export function createAgent(config: Config, store: MailStore, directory: PasswdFile, logger: Logger, policies = createPolicies(config)): DeliveryAgent {
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
async function allMailboxes(directory: PasswdFile): Promise<string[]> {
  const users = await directory.list();
  return [...new Set(users.flatMap((u) => [u.name, ...u.grants]))].sort();
}

export function createSweeper(
  config: Config, store: MailStore, directory: PasswdFile, logger: Logger, now?: () => number, policies = createPolicies(config),
): RetentionSweeper {
  return new RetentionSweeper({
    store,
    policies,
    mailboxes: () => allMailboxes(directory),
    logger,
    ...(now === undefined ? {} : { now }),
  });
}

/** R-X10's poll state (last logins, today's downloads) in `policy.state_dir`; a change needs a restart. */
/** `refresh`: R-X16, a worker of several re-checks each record's file (poll-state.ts). */
export function createPollState(config: Config, refresh = false): PollState {
  return new PollState(config.policy.state_dir, { refresh });
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
  const secret = randomBytes(32);
  await writeFile(path, secret, { mode: 0o600, flag: 'w' });
  return secret;
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

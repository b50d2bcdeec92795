/**
 * The POP3 server assembled from its parts. The caller (cli/serve.ts with cli/compose.ts, or a
 * test) picks the concrete store and directory; this module joins the layers that do not import
 * each other: net/ (the listener hands each accepted socket to `onConnection`), session/ (one
 * Session per connection) and commands/ (the table every Session runs).
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo, BlockList } from 'node:net';
import type { TokenVerifier } from './auth/sasl/token-verifier.js';
import type { GssapiAcceptor } from './auth/sasl/gssapi.js';
import { buildNetworks, inNetworks } from './net/networks.js';
import type { TlsProvider } from './net/tls.js';
import { Authenticator } from './auth/authenticator.js';
import { LOGIN_CACHE_OFF, type LoginCacheSettings } from './auth/login-cache.js';
import type { UserDirectory } from './auth/directory.js';
import { COMMANDS } from './commands/index.js';
import type { Logger } from './observability/logger.js';
import { Pop3Listener, type ConnectionHandler, type ListenAddress, type ListenerOptions } from './net/listener.js';
import { UNLIMITED, type ConnectionCaps, type LimitSettings } from './policy/connection-caps.js';
import type { SessionServices, SessionSettings } from './session/context.js';
import { Session } from './session/session.js';
import type { PollPolicy } from './policy/user-policy.js';
import { LoginThrottle } from './auth/throttle.js';
import { PollLimiter } from './policy/poll-limits.js';
import { PollState, type PollStore } from './policy/poll-state.js';
import { DEFAULT_FAILURE_DELAY_MAX_MS, DEFAULT_FAILURE_DELAY_MS, DEFAULT_FAILURE_WINDOW_S } from './protocol/limits.js';
import type { MailStore } from './storage/mail-store.js';
import { LocalSharedState } from './shared/local-state.js';
import type { SharedState } from './shared/shared-state.js';

/** The operational settings a reload may change along with the session settings. */
export interface OperationsOptions {
  /** R-X9: connection caps (default: none). */
  readonly limits?: LimitSettings;
  /** R-X13: peers whose PROXY header (v1/v2) is believed; default: none. */
  readonly proxyNetworks?: readonly string[];
  /** R-X13: the greeting after `+OK`. */
  readonly greeting?: string;
  /** R-X9: the failed-login delay, ms (default 2 s doubling to 15 s, forgotten after 15 min). */
  readonly failureDelay?: FailureDelay;
  /** The verified-login cache (auth/login-cache.ts); default off. */
  readonly loginCache?: LoginCacheSettings;
  /** R-S14: networks where plaintext logins are allowed without TLS; default loopback. */
  readonly trustedNetworks?: readonly string[];
  /** OAUTHBEARER/XOAUTH2 token verification; without it neither is offered. */
  readonly tokens?: TokenVerifier;
  /** How long a shutdown lets logged-in sessions finish, ms (default 0: close at once). */
  readonly shutdownTimeoutMs?: number;
}

export interface FailureDelay {
  readonly baseMs: number;
  readonly maxMs: number;
  readonly windowMs: number;
}

const DEFAULT_FAILURE_DELAY: FailureDelay = {
  baseMs: DEFAULT_FAILURE_DELAY_MS, maxMs: DEFAULT_FAILURE_DELAY_MAX_MS, windowMs: DEFAULT_FAILURE_WINDOW_S * 1000,
};

/** R-S14's default trusted networks: loopback. */
const LOOPBACK = ['127.0.0.0/8', '::1/128'];

export interface PoplarServerOptions extends OperationsOptions {
  /**
   * Secret for what an unknown user is shown (SCRAM salts): kept across restarts, or a comparison
   * of before and after tells which users exist. Default: random per process.
   */
  readonly serverSecret?: Buffer;
  readonly listen: readonly ListenAddress[];
  readonly settings: SessionSettings;
  readonly directory: UserDirectory;
  readonly store: MailStore;
  readonly logger: Logger;
  /** log2 scrypt cost of the dummy check for unknown users (R-S13). */
  readonly scryptCost: number;
  /** R-X10: what CAPA advertises as EXPIRE and LOGIN-DELAY, per user, and what is enforced. */
  readonly policy?: PollPolicy;
  /** R-X10: where last logins and today's downloads are kept (default: in memory); needs `policy`. */
  readonly pollState?: PollStore;
  /** The clock of LOGIN-DELAY, the download day and the failed-login window (tests inject one). */
  readonly now?: () => number;
  /** R-X3: certificates for implicit TLS and STLS; without it neither is offered. */
  readonly tls?: TlsProvider;
  /** R-S5: implicit-TLS (POP3S) addresses; needs `tls`. */
  readonly tlsListen?: readonly ListenAddress[];
  /** R-X20: the Kerberos acceptor for SASL GSSAPI; without it GSSAPI is not offered. */
  readonly gssapi?: GssapiAcceptor;
  /**
   * R-X9: where the connection caps are counted (default: in this process). `limits` and each
   * reload's `limits` are given to its `update`.
   */
  readonly connectionCaps?: ConnectionCaps;
  /**
   * R-X16: the state every limit shares (connection caps unless `connectionCaps` is given,
   * failed-login penalties, login cache entries). Default: in this process. A worker of
   * `poplar serve` passes the primary's (shared/ipc-client.ts).
   */
  readonly sharedState?: SharedState;
  /** R-X16: put before every session id (a worker's `<worker id>-`); default none. */
  readonly sessionIdPrefix?: string;
}

/** One open POP3 session as the admin API shows it (R-X21). */
export interface OpenSession {
  readonly id: string;
  readonly remoteAddress: string;
  /** Accepted at, ms since the epoch. */
  readonly since: number;
  readonly phase: 'authorization' | 'transaction' | 'update';
  /** Who logged in and which maildrop is open; undefined before login. */
  readonly user: string | undefined;
  readonly mailbox: string | undefined;
  readonly bytesOut: number;
  readonly secure: boolean;
  /** Drops the connection without UPDATE (R-K4); the session's `closed` follows. */
  end(): void;
}

export interface PoplarServer {
  /** The bound addresses (port 0 resolved): plain POP3 first, then POP3S. */
  addresses(): AddressInfo[];
  /** The implicit-TLS (POP3S) addresses. */
  tlsAddresses(): AddressInfo[];
  readonly sessionCount: number;
  /** R-X21: the sessions open in this process now. */
  openSessions(): OpenSession[];
  /** R-X9's failed-login counters of this server (the admin API reads its recent failures). */
  readonly throttle: LoginThrottle;
  /** Listening and not shutting down (the health check). */
  readonly accepting: boolean;
  /**
   * R-S20: settings for new sessions from now on (a reload); live sessions keep theirs. What
   * `operations` leaves out takes its default, as at start.
   */
  update(settings: SessionSettings, operations: OperationsOptions): void;
  /** Stops accepting; open sessions go on until close() (R-X16: the workers' first step of a stop). */
  stopAccepting(): void;
  /** Stops accepting; sessions get `deadlineMs` (default shutdownTimeoutMs) to finish. */
  close(deadlineMs?: number): Promise<void>;
}

export async function startServer(opts: PoplarServerOptions): Promise<PoplarServer> {
  const shared = opts.sharedState ?? new LocalSharedState();
  const limits = opts.connectionCaps ?? shared;
  limits.update(opts.limits ?? UNLIMITED);
  const listenerOptions = (o: OperationsOptions): ListenerOptions => ({
    limits,
    proxyNetworks: o.proxyNetworks === undefined || o.proxyNetworks.length === 0 ? undefined : buildNetworks(o.proxyNetworks),
  });
  const authenticator = new Authenticator(opts.directory, { scryptCost: opts.scryptCost, cache: opts.loginCache, now: opts.now, shared });
  const throttle = new LoginThrottle({ ...(opts.failureDelay ?? DEFAULT_FAILURE_DELAY), now: opts.now, shared });
  const pollLimits = opts.policy === undefined ? undefined : new PollLimiter({
    policy: opts.policy,
    state: opts.pollState ?? new PollState(undefined),
    now: opts.now,
    onError: (err, mailbox) => opts.logger.error({ err, mailbox, event: 'poll_state_write_failed' }, 'could not save poll state'),
  });
  const serverSecret = opts.serverSecret ?? randomBytes(32);
  /** What new sessions get; a reload replaces it (R-S20: live sessions keep what they started with). */
  interface ForNewSessions {
    readonly settings: SessionSettings;
    readonly services: SessionServices;
    readonly trusted: BlockList;
    readonly greeting: string;
  }
  const forNewSessions = (settings: SessionSettings, o: OperationsOptions): ForNewSessions => ({
    settings,
    services: {
      authenticator, store: opts.store, logger: opts.logger, policy: opts.policy, throttle, pollLimits, tls: opts.tls,
      tokens: o.tokens, gssapi: opts.gssapi, serverSecret, limits,
    },
    trusted: buildNetworks(o.trustedNetworks ?? LOOPBACK),
    greeting: o.greeting ?? 'POP3 server ready',
  });
  let current = forNewSessions(opts.settings, opts);
  const open = new Set<Session>();
  const onConnection: ConnectionHandler = (socket, info) => {
    const { settings, services, trusted, greeting } = current;
    const session = new Session(socket, services, settings, { ...info, trusted: inNetworks(trusted, info.remoteAddress) }, COMMANDS);
    open.add(session);
    void session.closed.then(() => open.delete(session));
    session.start(greeting);
    return session;
  };
  const view = (s: Session): OpenSession => ({
    id: s.id,
    remoteAddress: s.remoteAddress,
    since: s.since,
    phase: s.state.phase,
    user: s.stats.user,
    mailbox: s.stats.mailbox,
    bytesOut: s.stats.bytesOut,
    secure: s.secure,
    end: () => s.abort('ended by admin'),
  });
  let shutdownTimeoutMs = opts.shutdownTimeoutMs ?? 0;
  const listener = new Pop3Listener(onConnection, listenerOptions(opts), opts.tls, opts.logger, opts.sessionIdPrefix);
  await listener.listen(opts.listen);
  if (opts.tlsListen !== undefined && opts.tlsListen.length > 0) await listener.listen(opts.tlsListen, { tls: true });
  for (const a of listener.addresses(false)) opts.logger.info({ event: 'listening', address: a.address, port: a.port }, 'listening');
  for (const a of listener.addresses(true)) opts.logger.info({ event: 'listening', address: a.address, port: a.port, tls: true }, 'listening');
  return {
    addresses: () => listener.addresses(),
    tlsAddresses: () => listener.addresses(true),
    get sessionCount() {
      return listener.sessionCount;
    },
    openSessions: () => [...open].map(view),
    throttle,
    get accepting() {
      return listener.accepting;
    },
    update(settings: SessionSettings, operations: OperationsOptions) {
      limits.update(operations.limits ?? UNLIMITED);
      throttle.configure(operations.failureDelay ?? DEFAULT_FAILURE_DELAY);
      authenticator.configureCache(operations.loginCache ?? LOGIN_CACHE_OFF);
      listener.update(listenerOptions(operations));
      current = forNewSessions(settings, operations);
      shutdownTimeoutMs = operations.shutdownTimeoutMs ?? 0;
    },
    stopAccepting: () => listener.stopAccepting(),
    close: async (deadlineMs: number = shutdownTimeoutMs) => {
      await listener.close(deadlineMs);
      await pollLimits?.state.flush(); // R-X10: the last logins and counts survive a restart
    },
  };
}

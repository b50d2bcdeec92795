/**
 * R-X16: the one interface for the state every limit shares, whatever serves the sessions: one
 * process (`LocalSharedState`, local-state.ts), the workers of one host (`IpcSharedState`,
 * ipc-client.ts, answered by the primary's `SharedStateHost`, ipc-host.ts), or many hosts (a
 * PostgreSQL implementation, R-X17, implements the same methods).
 *
 * Its shape, for every implementation:
 * - Asynchronous: every question returns a promise. It rejects with `SharedStateError` when the
 *   state cannot be reached or does not answer in time; callers then fail closed (POP3 answers
 *   `-ERR [SYS/TEMP]`, errors.ts toPop3Error), never admit.
 * - Giving back (`release`, `releaseUser`, `unclaim`, `loginSucceeded`, `rememberLogin`) never
 *   throws and never waits: what cannot be sent is dropped, and the holder's claims end with its
 *   lease (a worker that dies: the primary releases all it held; a node: its lease expires).
 * - Bounded: entries are capped (penalties, cache) and the claims are counted per holder, so a
 *   holder's claims can all be released at once.
 * - Nothing secret crosses it: the login cache stores MACs (auth/login-cache.ts), the penalty
 *   counters password fingerprints (auth/throttle.ts), both keyed with `SharedState.key`.
 *
 * This folder is a leaf: it imports only errors.ts, so auth/, policy/, net/ and session/ may use it.
 */

/** R-X9 connection caps. */
export interface LimitSettings {
  /** Sessions open at once, server-wide; 0 = unlimited. */
  readonly maxConnections: number;
  /** Sessions open at once from one IP address; 0 = unlimited. */
  readonly maxConnectionsPerIp: number;
  /** Logged-in sessions of one user at once; 0 = unlimited. */
  readonly maxConnectionsPerUser: number;
}

export const UNLIMITED: LimitSettings = { maxConnections: 0, maxConnectionsPerIp: 0, maxConnectionsPerUser: 0 };

export type Admission = 'ok' | 'total' | 'ip';

/** R-X9 failed-login delay. */
export interface PenaltySettings {
  /** Delay after the first counted failure, ms; 0 disables the delay. */
  readonly baseMs: number;
  /** Upper bound of the delay, ms. */
  readonly maxMs: number;
  /** Failures older than this are forgotten, ms. */
  readonly windowMs: number;
}

/** The verified-login cache's bounds (auth/login-cache.ts). */
export interface LoginCacheSettings {
  /** How long a verified login is remembered, in ms; 0 turns the cache off. */
  readonly ttlMs: number;
  /** Most users remembered at once; 0 turns the cache off. */
  readonly maxEntries: number;
}

export const LOGIN_CACHE_OFF: LoginCacheSettings = { ttlMs: 0, maxEntries: 0 };

/** What the login cache keeps per user: a MAC (never a password or hash) and its expiry. */
export interface CachedLogin {
  /** The 32 MAC bytes as a one-byte-per-char (latin1) string. */
  readonly mac: string;
  /** ms since the epoch. */
  readonly expires: number;
}

export interface SharedSettings {
  readonly limits: LimitSettings;
  readonly penalty: PenaltySettings;
  readonly loginCache: LoginCacheSettings;
}

/** The connection-cap part, which net/listener.ts and the per-user cap use (policy/connection-caps.ts). */
export interface ConnectionCaps {
  /** Counts a new connection from `ip`, or says which cap refuses it. Rejects: refuse the connection. */
  admit(ip: string): Promise<Admission>;
  /** Gives back the slot of an admitted connection. */
  release(ip: string): void;
  /** Counts a login of `user`; false when the user already has the most sessions allowed. Rejects: refuse the login. */
  acquireUser(user: string): Promise<boolean>;
  /** Gives back the slot of a login counted by `acquireUser`. */
  releaseUser(user: string): void;
  /** New caps for what is admitted from now on (a reload). */
  update(settings: LimitSettings): void;
}

export interface SharedState extends ConnectionCaps {
  /**
   * 32 random octets, the same for every holder of this state, drawn when the state is made and
   * never written anywhere: the key of the login cache's MACs and of the penalty counters'
   * password fingerprints, so one worker's entries mean the same to the next.
   */
  readonly key: Buffer;

  /** The failed-login delay now for `ip` and `user` (the larger of both), ms. */
  penaltyNow(ip: string, user: string | undefined, now: number): Promise<number>;
  /**
   * Counts a failed login (not again for a `fingerprint` already counted for that user) and
   * returns the delay it earns, ms.
   */
  loginFailed(ip: string, user: string | undefined, fingerprint: string | undefined, now: number): Promise<number>;
  /** A right credential clears the user's counter (not the address's). */
  loginSucceeded(user: string): void;

  /** The cache entry of `user`, if any and not expired at `now`. */
  cachedLogin(user: string, now: number): Promise<CachedLogin | undefined>;
  /** Stores `user`'s entry (least recently used out first beyond the cache's bound). */
  rememberLogin(user: string, entry: CachedLogin): void;

  /**
   * Takes the exclusive claim `name` (e.g. `maildrop:<name>` for `pop3.lock_mode = "exclusive"`);
   * false when someone holds it. Rejects: refuse.
   */
  claim(name: string): Promise<boolean>;
  /** Gives back a claim taken by `claim`. */
  unclaim(name: string): void;

  /** New settings (a reload). The cross-worker client leaves this to the primary, which reloads its own. */
  configure(settings: SharedSettings): void;
}

/** How long a question to the shared state may take before the caller fails closed, ms. */
export const SHARED_STATE_TIMEOUT_MS = 2_000;
/** Questions one worker may have waiting at once; more fail at once (bounded memory, fail closed). */
export const SHARED_STATE_MAX_PENDING = 10_000;

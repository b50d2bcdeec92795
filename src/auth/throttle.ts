/**
 * The failed-login delay of R-X9: each failure from an IP or for a user doubles the delay (2 s,
 * 4 s, 8 s, capped at 15 s by default), so guessing passwords gets slow whether an attacker
 * spreads over users or over addresses. Two waits use it (commands/login.ts): every attempt serves
 * `current()` before its credential is checked, so hanging up and reconnecting saves nothing, and
 * a failure's -ERR waits what `failure()` returns. A client repeating the same stale
 * password (a phone with an old password polling every minute) does not make it grow: a failure
 * with a password already tried for that user is not counted again. Counters fade after
 * `windowMs` without failures. Pure: the clock is injected; memory is bounded by `maxEntries`.
 * Beside the counters, the last RECENT_FAILURES failures (time, address, user) are kept in a ring
 * for the admin API (R-X21): `recent()` and `penalty()`.
 */
import { createHmac, randomBytes } from 'node:crypto';

export interface ThrottleOptions {
  /** Delay after the first counted failure, ms; 0 disables the delay. */
  readonly baseMs: number;
  /** Upper bound of the delay, ms. */
  readonly maxMs: number;
  /** Failures older than this are forgotten, ms. */
  readonly windowMs: number;
  /** Most IPs and users tracked; the oldest are dropped first. */
  readonly maxEntries?: number;
  readonly now?: () => number;
}

interface Counter {
  failures: number;
  last: number;
  /** Fingerprints of the passwords that failed (users only), to spot a stale password. */
  tried?: Set<string>;
}

const MAX_TRIED_PER_USER = 8;
/** How many failed logins `recent()` remembers (a ring: the oldest is overwritten). */
export const RECENT_FAILURES = 1000;

/** One failed login as the admin API shows it. */
export interface RecentFailure {
  /** ms since the epoch */
  readonly at: number;
  readonly address: string;
  /** The name the client gave, if any (it may not exist). */
  readonly user: string | undefined;
}

/** The counter behind the delay of one address or user. */
export interface Penalty {
  readonly failures: number;
  /** The delay the next failure gets at least, ms. */
  readonly delayMs: number;
}

export class LoginThrottle {
  private readonly ips = new Map<string, Counter>();
  private readonly users = new Map<string, Counter>();
  /** Per-process key: fingerprints of passwords are useless outside this process. */
  private readonly key = randomBytes(32);
  private readonly now: () => number;
  private readonly maxEntries: number;
  private readonly ring: RecentFailure[] = [];
  private ringNext = 0;

  constructor(private opts: ThrottleOptions) {
    this.now = opts.now ?? Date.now;
    this.maxEntries = opts.maxEntries ?? 100_000;
  }

  /** New delays and window (a configuration reload); the counters are kept. */
  configure(timing: Pick<ThrottleOptions, 'baseMs' | 'maxMs' | 'windowMs'>): void {
    this.opts = { ...this.opts, ...timing };
  }

  /** Records a failed login and returns how long to wait before answering it, ms. */
  failure(ip: string, user: string | undefined, password: string | undefined): number {
    const now = this.now();
    const entry: RecentFailure = { at: now, address: ip, user };
    if (this.ring.length < RECENT_FAILURES) this.ring.push(entry);
    else this.ring[this.ringNext] = entry;
    this.ringNext = (this.ringNext + 1) % RECENT_FAILURES;
    const u = user === undefined ? undefined : this.counter(this.users, user, now);
    const fingerprint =
      user === undefined || password === undefined
        ? undefined
        : createHmac('sha256', this.key).update(user).update('\0').update(password).digest('base64');
    const stale = fingerprint !== undefined && u?.tried?.has(fingerprint) === true;
    const i = this.counter(this.ips, ip, now);
    if (!stale) {
      i.failures++;
      if (u !== undefined) {
        u.failures++;
        if (fingerprint !== undefined) {
          u.tried ??= new Set();
          if (u.tried.size >= MAX_TRIED_PER_USER) u.tried.delete(u.tried.values().next().value!);
          u.tried.add(fingerprint);
        }
      }
    }
    i.last = now;
    if (u !== undefined) u.last = now;
    return this.delay(Math.max(i.failures, u?.failures ?? 0));
  }

  /** A successful login clears the user's counter (not the IP's: one success buys no guesses). */
  success(user: string): void {
    this.users.delete(user);
  }

  /** The delay the next failure from this IP for this user would get at least, ms. */
  current(ip: string, user?: string): number {
    const now = this.now();
    const i = this.live(this.ips.get(ip), now);
    const u = user === undefined ? undefined : this.live(this.users.get(user), now);
    return this.delay(Math.max(i?.failures ?? 0, u?.failures ?? 0));
  }

  /** The last RECENT_FAILURES failed logins, newest first. */
  recent(): RecentFailure[] {
    const n = this.ring.length;
    const out: RecentFailure[] = [];
    for (let k = 1; k <= n; k++) out.push(this.ring[(this.ringNext - k + n) % n]!);
    return out;
  }

  /** The live counter of one address or user (undefined: none, or faded after `windowMs`). */
  penalty(kind: 'address' | 'user', key: string): Penalty | undefined {
    const c = this.live((kind === 'address' ? this.ips : this.users).get(key), this.now());
    return c === undefined ? undefined : { failures: c.failures, delayMs: this.delay(c.failures) };
  }

  private delay(failures: number): number {
    if (failures <= 0 || this.opts.baseMs <= 0) return 0;
    return Math.min(this.opts.maxMs, this.opts.baseMs * 2 ** Math.min(failures - 1, 30));
  }

  private live(c: Counter | undefined, now: number): Counter | undefined {
    return c !== undefined && now - c.last <= this.opts.windowMs ? c : undefined;
  }

  private counter(map: Map<string, Counter>, key: string, now: number): Counter {
    let c = this.live(map.get(key), now);
    if (c === undefined) {
      c = { failures: 0, last: now };
    } else {
      map.delete(key); // re-insert: Map order is the eviction order (oldest first)
    }
    map.set(key, c);
    while (map.size > this.maxEntries) map.delete(map.keys().next().value!);
    return c;
  }
}

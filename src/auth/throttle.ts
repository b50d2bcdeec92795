/**
 * The failed-login delay of R-X9: each failure from an IP or for a user doubles the delay (2 s,
 * 4 s, 8 s, capped at 15 s by default), so guessing passwords gets slow whether an attacker
 * spreads over users or over addresses. Two waits use it (commands/login.ts): every attempt serves
 * `current()` before its credential is checked, so hanging up and reconnecting saves nothing, and
 * a failure's -ERR waits what `failure()` returns. A client repeating the same stale
 * password (a phone with an old password polling every minute) does not make it grow: a failure
 * with a password already tried for that user is not counted again. Counters fade after
 * `windowMs` without failures. The clock is injected; memory is bounded by `maxEntries`.
 *
 * The counters live in the shared state (src/shared/, R-X16): with workers, a failure on one
 * worker delays the next try on any other. Passwords never leave this process: only their
 * fingerprint (HMAC with the shared state's key) is counted.
 *
 * Beside the counters, the last RECENT_FAILURES failures this process saw (time, address, user)
 * are kept in a ring for the admin API (R-X21): `recent()` and `penalty()`.
 */
import { createHmac } from 'node:crypto';
import { LocalSharedState } from '../shared/local-state.js';
import type { PenaltySettings, SharedState } from '../shared/shared-state.js';

export interface ThrottleOptions extends PenaltySettings {
  /** Most IPs and users tracked when the counters are kept here; the oldest are dropped first. */
  readonly maxEntries?: number;
  readonly now?: () => number;
  /** Where the counters live; default: a state of its own (one process). */
  readonly shared?: SharedState;
}

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
  /** Failures of this address or user within the window among the recent ones kept (every worker's, with workers). */
  readonly failures: number;
  /** The delay the next failure gets at least, ms (from the shared counters). */
  readonly delayMs: number;
}

/** How many of `recent` are failures of this address or user within the last `windowMs` at `now` (Penalty.failures). */
export function countRecentFailures(recent: readonly RecentFailure[], kind: 'address' | 'user', key: string, now: number, windowMs: number): number {
  return recent.filter((f) => now - f.at <= windowMs && (kind === 'address' ? f.address === key : f.user === key)).length;
}

export class LoginThrottle {
  private readonly now: () => number;
  private readonly shared: SharedState;
  private windowMs: number;
  private readonly ring: RecentFailure[] = [];
  private ringNext = 0;

  constructor(opts: ThrottleOptions) {
    this.now = opts.now ?? Date.now;
    const timing = { baseMs: opts.baseMs, maxMs: opts.maxMs, windowMs: opts.windowMs };
    this.windowMs = opts.windowMs;
    this.shared = opts.shared ?? new LocalSharedState({ penalty: timing }, opts.maxEntries === undefined ? {} : { maxPenaltyEntries: opts.maxEntries });
    if (this.shared instanceof LocalSharedState) this.shared.configurePenalty(timing);
  }

  /** New delays and window (a configuration reload); the counters are kept. */
  configure(timing: PenaltySettings): void {
    this.windowMs = timing.windowMs;
    if (this.shared instanceof LocalSharedState) this.shared.configurePenalty(timing);
  }

  /** Records a failed login and returns how long to wait before answering it, ms. Rejects: the shared state is unreachable. */
  failure(ip: string, user: string | undefined, password: string | undefined): Promise<number> {
    const entry: RecentFailure = { at: this.now(), address: ip, user };
    if (this.ring.length < RECENT_FAILURES) this.ring.push(entry);
    else this.ring[this.ringNext] = entry;
    this.ringNext = (this.ringNext + 1) % RECENT_FAILURES;
    const fingerprint =
      user === undefined || password === undefined
        ? undefined
        : createHmac('sha256', this.shared.key).update(user).update('\0').update(password).digest('base64');
    return this.shared.loginFailed(ip, user, fingerprint, this.now());
  }

  /** A successful login clears the user's counter (not the IP's: one success buys no guesses). */
  success(user: string): void {
    this.shared.loginSucceeded(user);
  }

  /** The delay the next failure from this IP for this user would get at least, ms. Rejects: the shared state is unreachable. */
  current(ip: string, user?: string): Promise<number> {
    return this.shared.penaltyNow(ip, user, this.now());
  }

  /** The last RECENT_FAILURES failed logins this process saw, newest first. */
  recent(): RecentFailure[] {
    const n = this.ring.length;
    const out: RecentFailure[] = [];
    for (let k = 1; k <= n; k++) out.push(this.ring[(this.ringNext - k + n) % n]!);
    return out;
  }

  /** The penalty of one address or user now (undefined: none). Rejects: the shared state is unreachable. */
  async penalty(kind: 'address' | 'user', key: string): Promise<Penalty | undefined> {
    const now = this.now();
    const delayMs = kind === 'address' ? await this.shared.penaltyNow(key, undefined, now) : await this.shared.penaltyNow('', key, now);
    const failures = countRecentFailures(this.ring, kind, key, now, this.windowMs);
    return delayMs === 0 && failures === 0 ? undefined : { failures, delayMs };
  }
}

/**
 * R-X16: the shared state held in one process's memory. With `server.workers = 1` the server uses
 * it directly (today's behaviour and speed: every answer is an already-resolved promise); with
 * more workers the primary holds one and answers the workers from it (ipc-host.ts), so it is also
 * the truth of the cross-worker implementation.
 *
 * The counters are R-X9's: connection caps as Exchange has them (total, per IP, per user), the
 * failed-login counters per address and per user (doubling delay, fading after the window, a
 * stale password not counted twice; auth/throttle.ts computes fingerprints), the verified-login
 * cache's entries (auth/login-cache.ts computes the MACs), and exclusive claims. Memory is
 * bounded: counters and cache entries by their maximum count (oldest out first).
 */
import { randomBytes } from 'node:crypto';
import {
  LOGIN_CACHE_OFF, UNLIMITED, type Admission, type CachedLogin, type LimitSettings, type PenaltySettings, type SharedSettings,
  type SharedState,
} from './shared-state.js';

interface Counter {
  failures: number;
  last: number;
  /** Fingerprints of the passwords that failed (users only), to spot a stale password. */
  tried?: Set<string>;
}

const MAX_TRIED_PER_USER = 8;
/** Most addresses and users whose failures are remembered; the oldest are dropped first. */
export const MAX_PENALTY_ENTRIES = 100_000;

const NO_PENALTY: PenaltySettings = { baseMs: 0, maxMs: 0, windowMs: 0 };

export class LocalSharedState implements SharedState {
  readonly key: Buffer;
  private total = 0;
  private readonly perIp = new Map<string, number>();
  private readonly perUser = new Map<string, number>();
  private readonly ips = new Map<string, Counter>();
  private readonly users = new Map<string, Counter>();
  /** By user name; Map order is recency order (the first key is the least recently used). */
  private readonly cache = new Map<string, CachedLogin>();
  private readonly claims = new Set<string>();
  private limits: LimitSettings;
  private penalty: PenaltySettings;
  private loginCache = LOGIN_CACHE_OFF;

  constructor(settings: Partial<SharedSettings> = {}, opts: { readonly key?: Buffer; readonly maxPenaltyEntries?: number } = {}) {
    this.key = opts.key ?? randomBytes(32);
    this.limits = settings.limits ?? UNLIMITED;
    this.penalty = settings.penalty ?? NO_PENALTY;
    this.maxPenaltyEntries = opts.maxPenaltyEntries ?? MAX_PENALTY_ENTRIES;
    if (settings.loginCache !== undefined) this.configureCache(settings.loginCache);
  }

  private readonly maxPenaltyEntries: number;

  /** Connections admitted and not yet released (every worker's, in the primary). */
  get connections(): number {
    return this.total;
  }

  configure(settings: SharedSettings): void {
    this.update(settings.limits);
    this.configurePenalty(settings.penalty);
    this.configureCache(settings.loginCache);
  }

  update(limits: LimitSettings): void {
    this.limits = limits;
  }

  configurePenalty(penalty: PenaltySettings): void {
    this.penalty = penalty;
  }

  /** New bounds apply at once (turning the cache off forgets everything). */
  configureCache(settings: typeof LOGIN_CACHE_OFF): void {
    this.loginCache = settings;
    if (settings.ttlMs <= 0 || settings.maxEntries <= 0) this.cache.clear();
    this.trimCache();
  }

  // ---- connection caps (R-X9)

  admit(ip: string): Promise<Admission> {
    return Promise.resolve(this.admitNow(ip));
  }

  admitNow(ip: string): Admission {
    const { maxConnections, maxConnectionsPerIp } = this.limits;
    if (maxConnections > 0 && this.total >= maxConnections) return 'total';
    const fromIp = this.perIp.get(ip) ?? 0;
    if (maxConnectionsPerIp > 0 && fromIp >= maxConnectionsPerIp) return 'ip';
    this.total++;
    this.perIp.set(ip, fromIp + 1);
    return 'ok';
  }

  release(ip: string): void {
    this.total = Math.max(0, this.total - 1);
    const n = (this.perIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.perIp.delete(ip);
    else this.perIp.set(ip, n);
  }

  acquireUser(user: string): Promise<boolean> {
    return Promise.resolve(this.acquireUserNow(user));
  }

  acquireUserNow(user: string): boolean {
    const n = this.perUser.get(user) ?? 0;
    if (this.limits.maxConnectionsPerUser > 0 && n >= this.limits.maxConnectionsPerUser) return false;
    this.perUser.set(user, n + 1);
    return true;
  }

  releaseUser(user: string): void {
    const n = (this.perUser.get(user) ?? 1) - 1;
    if (n <= 0) this.perUser.delete(user);
    else this.perUser.set(user, n);
  }

  // ---- failed-login penalties (R-X9)

  penaltyNow(ip: string, user: string | undefined, now: number): Promise<number> {
    return Promise.resolve(this.penaltyNowSync(ip, user, now));
  }

  penaltyNowSync(ip: string, user: string | undefined, now: number): number {
    const i = this.live(this.ips.get(ip), now);
    const u = user === undefined ? undefined : this.live(this.users.get(user), now);
    return this.delay(Math.max(i?.failures ?? 0, u?.failures ?? 0));
  }

  loginFailed(ip: string, user: string | undefined, fingerprint: string | undefined, now: number): Promise<number> {
    return Promise.resolve(this.loginFailedNow(ip, user, fingerprint, now));
  }

  loginFailedNow(ip: string, user: string | undefined, fingerprint: string | undefined, now: number): number {
    const u = user === undefined ? undefined : this.counter(this.users, user, now);
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

  loginSucceeded(user: string): void {
    this.users.delete(user);
  }

  private delay(failures: number): number {
    const { baseMs, maxMs } = this.penalty;
    if (failures <= 0 || baseMs <= 0) return 0;
    return Math.min(maxMs, baseMs * 2 ** Math.min(failures - 1, 30));
  }

  private live(c: Counter | undefined, now: number): Counter | undefined {
    return c !== undefined && now - c.last <= this.penalty.windowMs ? c : undefined;
  }

  private counter(map: Map<string, Counter>, key: string, now: number): Counter {
    let c = this.live(map.get(key), now);
    if (c === undefined) {
      c = { failures: 0, last: now };
    } else {
      map.delete(key); // re-insert: Map order is the eviction order (oldest first)
    }
    map.set(key, c);
    while (map.size > this.maxPenaltyEntries) map.delete(map.keys().next().value!);
    return c;
  }

  // ---- the verified-login cache's entries

  cachedLogin(user: string, now: number): Promise<CachedLogin | undefined> {
    return Promise.resolve(this.cachedLoginNow(user, now));
  }

  cachedLoginNow(user: string, now: number): CachedLogin | undefined {
    const entry = this.cache.get(user);
    if (entry === undefined) return undefined;
    if (now >= entry.expires) {
      this.cache.delete(user);
      return undefined;
    }
    this.cache.delete(user);
    this.cache.set(user, entry);
    return entry;
  }

  rememberLogin(user: string, entry: CachedLogin): void {
    if (this.loginCache.ttlMs <= 0 || this.loginCache.maxEntries <= 0) return;
    this.cache.delete(user);
    this.cache.set(user, entry);
    this.trimCache();
  }

  /** Users with a cache entry (expired ones until looked up). */
  get cachedLogins(): number {
    return this.cache.size;
  }

  private trimCache(): void {
    for (const oldest of this.cache.keys()) {
      if (this.cache.size <= this.loginCache.maxEntries) break;
      this.cache.delete(oldest);
    }
  }

  // ---- exclusive claims

  claim(name: string): Promise<boolean> {
    return Promise.resolve(this.claimNow(name));
  }

  claimNow(name: string): boolean {
    if (this.claims.has(name)) return false;
    this.claims.add(name);
    return true;
  }

  unclaim(name: string): void {
    this.claims.delete(name);
  }
}

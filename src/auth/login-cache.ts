/**
 * The verified-login cache, as Dovecot's auth cache (auth_cache_ttl) serves the same purpose: a
 * password login that succeeded against a stored hash is remembered for a while, so the same
 * user giving the same password again is let in without running the slow scheme (5,000 SHA-512
 * rounds, or scrypt) or the dummy check beside it.
 *
 * What is kept per user: HMAC-SHA-256 over (user name, the stored hash string, the password)
 * with a key drawn at random when the process starts and never written anywhere, and when the
 * entry expires. No password and no hash is kept. A login is let in from the cache only when the
 * MAC of what it gives matches, so a different password, or a stored hash that changed since
 * (`poplar user passwd`, an edited users file) never matches and takes the full path. The cache
 * never rejects anything: every miss is handled exactly as without it, so a wrong password costs
 * what it always cost and fails as an unknown user does (R-S13).
 *
 * The entries live in the shared state (src/shared/, R-X16): with workers, a login verified by one
 * worker is let in from the cache by the next, since every worker's MAC key is the shared
 * state's `key`. Only the MAC and the expiry cross between processes.
 *
 * Bounded: at most `maxEntries` users (least recently used out first), each entry ~150 bytes
 * besides the user name (bench/auth-login.ts).
 * An entry expires `ttlMs` after the login that verified it; hits do not extend it, so a
 * password is checked against the scheme at least once per TTL.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { LocalSharedState } from '../shared/local-state.js';
import { LOGIN_CACHE_OFF, type LoginCacheSettings, type SharedState } from '../shared/shared-state.js';

export { LOGIN_CACHE_OFF, type LoginCacheSettings };

export class LoginCache {
  private settings: LoginCacheSettings;
  private readonly now: () => number;
  private readonly shared: SharedState;

  /** Without `shared`, the entries are kept in a state of its own (one process). */
  constructor(settings: LoginCacheSettings = LOGIN_CACHE_OFF, now: () => number = Date.now, shared?: SharedState) {
    this.settings = settings;
    this.now = now;
    this.shared = shared ?? new LocalSharedState();
    if (this.shared instanceof LocalSharedState) this.shared.configureCache(settings);
  }

  get enabled(): boolean {
    return this.settings.ttlMs > 0 && this.settings.maxEntries > 0;
  }

  /** Users remembered, when the entries are kept in this process (undefined otherwise). */
  get size(): number | undefined {
    return this.shared instanceof LocalSharedState ? this.shared.cachedLogins : undefined;
  }

  /** A reload: new bounds apply at once (turning the cache off forgets everything kept here). */
  configure(settings: LoginCacheSettings): void {
    this.settings = settings;
    if (this.shared instanceof LocalSharedState) this.shared.configureCache(settings);
  }

  /**
   * True only when `password` was verified for `name` against this same `stored` hash, within the
   * TTL. A shared state that does not answer is a miss: the full check runs.
   */
  async matches(name: string, stored: string, password: string): Promise<boolean> {
    if (!this.enabled) return false;
    const entry = await this.shared.cachedLogin(name, this.now()).catch(() => undefined);
    if (entry === undefined) return false;
    return timingSafeEqual(this.mac(name, stored, password), Buffer.from(entry.mac, 'latin1'));
  }

  /** Called after the full check succeeded. */
  remember(name: string, stored: string, password: string): void {
    if (!this.enabled) return;
    this.shared.rememberLogin(name, { mac: this.mac(name, stored, password).toString('latin1'), expires: this.now() + this.settings.ttlMs });
  }

  /** Each field length-prefixed, so no two different triples give the same input. */
  private mac(name: string, stored: string, password: string): Buffer {
    const h = createHmac('sha256', this.shared.key);
    for (const field of [name, stored, password]) {
      const bytes = Buffer.from(field, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32BE(bytes.length);
      h.update(len).update(bytes);
    }
    return h.digest();
  }
}

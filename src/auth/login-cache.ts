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
 * Bounded: at most `maxEntries` users (least recently used out first), each entry ~150 bytes
 * besides the user name (bench/auth-login.ts).
 * An entry expires `ttlMs` after the login that verified it; hits do not extend it, so a
 * password is checked against the scheme at least once per TTL.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export interface LoginCacheSettings {
  /** How long a verified login is remembered, in ms; 0 turns the cache off. */
  readonly ttlMs: number;
  /** Most users remembered at once; 0 turns the cache off. */
  readonly maxEntries: number;
}

interface Entry {
  /** The 32 MAC bytes as a one-byte-per-char string: a third of a Buffer's footprint. */
  readonly mac: string;
  readonly expires: number;
}

/** Off unless configured: library users and tests get exactly the uncached behaviour. */
export const LOGIN_CACHE_OFF: LoginCacheSettings = { ttlMs: 0, maxEntries: 0 };

export class LoginCache {
  private readonly key = randomBytes(32);
  /** By user name; Map order is recency order (the first key is the least recently used). */
  private readonly entries = new Map<string, Entry>();
  private settings: LoginCacheSettings;
  private readonly now: () => number;

  constructor(settings: LoginCacheSettings = LOGIN_CACHE_OFF, now: () => number = Date.now) {
    this.settings = settings;
    this.now = now;
  }

  get enabled(): boolean {
    return this.settings.ttlMs > 0 && this.settings.maxEntries > 0;
  }

  get size(): number {
    return this.entries.size;
  }

  /** A reload: new bounds apply at once (turning the cache off forgets everything). */
  configure(settings: LoginCacheSettings): void {
    this.settings = settings;
    if (!this.enabled) this.entries.clear();
    this.trim();
  }

  /** True only when `password` was verified for `name` against this same `stored` hash, within the TTL. */
  matches(name: string, stored: string, password: string): boolean {
    if (!this.enabled) return false;
    const entry = this.entries.get(name);
    if (entry === undefined) return false;
    if (this.now() >= entry.expires) {
      this.entries.delete(name);
      return false;
    }
    if (!timingSafeEqual(this.mac(name, stored, password), Buffer.from(entry.mac, 'latin1'))) return false;
    this.entries.delete(name);
    this.entries.set(name, entry);
    return true;
  }

  /** Called after the full check succeeded. */
  remember(name: string, stored: string, password: string): void {
    if (!this.enabled) return;
    this.entries.delete(name);
    this.entries.set(name, { mac: this.mac(name, stored, password).toString('latin1'), expires: this.now() + this.settings.ttlMs });
    this.trim();
  }

  private trim(): void {
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.settings.maxEntries) break;
      this.entries.delete(oldest);
    }
  }

  /** Each field length-prefixed, so no two different triples give the same input. */
  private mac(name: string, stored: string, password: string): Buffer {
    const h = createHmac('sha256', this.key);
    for (const field of [name, stored, password]) {
      const bytes = Buffer.from(field, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32BE(bytes.length);
      h.update(len).update(bytes);
    }
    return h.digest();
  }
}

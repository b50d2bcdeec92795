/**
 * Verifies a login against the user directory. R-S13: an unknown user and a wrong password fail
 * alike and take the same time, because an unknown user is checked against a dummy hash of the
 * configured cost, and so is a user whose stored scheme is not scrypt (it would answer sooner).
 * A login that repeats one verified within `auth.cache_ttl` is let in from the verified-login
 * cache (login-cache.ts) without either; anything else takes the full path. Returns the user's
 * record, or undefined on any failure.
 */
import type { UserDirectory, UserRecord } from './directory.js';
import { LoginCache, type LoginCacheSettings } from './login-cache.js';
import { schemeOf, verifyDummy, verifyPassword } from './password.js';

export interface AuthenticatorOptions {
  /** log2 of scrypt's N for the dummy check, the cost new hashes are made with. */
  readonly scryptCost: number;
  /** The verified-login cache; default off. */
  readonly cache?: LoginCacheSettings;
  /** The cache's clock (tests inject one). */
  readonly now?: () => number;
  /** The scheme check and the dummy check; tests wrap the real ones to count the calls. */
  readonly verify?: typeof verifyPassword;
  readonly dummy?: typeof verifyDummy;
}

export class Authenticator {
  private readonly cache: LoginCache;
  private readonly verify: typeof verifyPassword;
  private readonly dummy: typeof verifyDummy;

  constructor(
    private readonly directory: UserDirectory,
    private readonly opts: AuthenticatorOptions,
  ) {
    this.cache = new LoginCache(opts.cache, opts.now);
    this.verify = opts.verify ?? verifyPassword;
    this.dummy = opts.dummy ?? verifyDummy;
  }

  /** A reload: new cache bounds (R-S20). */
  configureCache(settings: LoginCacheSettings): void {
    this.cache.configure(settings);
  }

  /** The user's record, for mechanisms that verify their own proof (SCRAM, CRAM-MD5, NTLM, APOP). */
  lookup(name: string): Promise<UserRecord | undefined> {
    return this.directory.lookup(name);
  }

  /** The password check of USER/PASS, PLAIN and LOGIN (R-S9, R-X4). */
  async login(name: string, password: string): Promise<UserRecord | undefined> {
    const record = await this.directory.lookup(name);
    if (record === undefined) {
      await this.dummy(password, this.opts.scryptCost);
      return undefined;
    }
    // Only ever a shortcut to success: a miss goes on exactly as without the cache (R-S13).
    if (this.cache.matches(record.name, record.password, password)) return record;
    let ok: boolean;
    if (schemeOf(record.password) === 'SCRYPT') {
      ok = await this.verify(record.password, password);
    } else {
      // A fast scheme (a Dovecot {SSHA512}), a locked or malformed password field would answer
      // sooner than an unknown user does: add the dummy's cost so no user stands out (R-S13).
      [ok] = await Promise.all([this.verify(record.password, password), this.dummy(password, this.opts.scryptCost)]);
    }
    if (!ok) return undefined;
    this.cache.remember(record.name, record.password, password);
    return record;
  }
}

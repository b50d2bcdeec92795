/**
 * Verifies a login against the user directory. R-S13: an unknown user and a wrong password fail
 * alike and take the same time, because every failure does the same work: one scrypt of the
 * configured cost and one default SHA512-CRYPT (password.ts DUMMY_KINDS) — the user's own check
 * counts as one of them when its scheme and cost match, dummies make up the rest; a check of any
 * other scheme, and a directory's own check (an LDAP bind, UserRecord.checkPassword), runs beside
 * both dummies. A directory that cannot answer (DirectoryUnavailableError) fails the login with
 * `-ERR [SYS/TEMP]`, never lets it in (R-X19). A success of the two classes only pays for its own
 * check: answering it sooner tells nothing to someone who knows the password.
 * A login that repeats one verified within `auth.cache_ttl` is let in from the verified-login
 * cache (login-cache.ts) without either; anything else takes the full path. Returns the user's
 * record, or undefined on any failure.
 */
import type { UserDirectory, UserRecord } from './directory.js';
import { LoginCache, type LoginCacheSettings } from './login-cache.js';
import { costClassOf, DUMMY_KINDS, type DummyKind, isCheapScheme, verifyDummy, verifyPassword } from './password.js';
import type { SharedState } from '../shared/shared-state.js';

export interface AuthenticatorOptions {
  /** log2 of scrypt's N for the dummy check, the cost new hashes are made with. */
  readonly scryptCost: number;
  /** The verified-login cache; default off. */
  readonly cache?: LoginCacheSettings;
  /** The cache's clock (tests inject one). */
  readonly now?: () => number;
  /** Where the cache entries live (R-X16: shared by the workers); default: this object. */
  readonly shared?: SharedState;
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
    this.cache = new LoginCache(opts.cache, opts.now, opts.shared);
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

  /**
   * The password check of USER/PASS, PLAIN and LOGIN (R-S9, R-X4). `seen.cached` is set when the
   * login cache let the user in (the login log line's `cached`).
   */
  async login(name: string, password: string, seen?: { cached: boolean }): Promise<UserRecord | undefined> {
    const record = await this.directory.lookup(name);
    if (record === undefined) {
      await this.failure(password, undefined);
      return undefined;
    }
    // Only ever a shortcut to success: a miss goes on exactly as without the cache (R-S13).
    if (await this.cache.matches(record.name, record.password, password)) {
      if (seen !== undefined) seen.cached = true;
      return record;
    }
    const own = record.checkPassword === undefined ? costClassOf(record.password, this.opts.scryptCost) : undefined;
    if (own === undefined && record.checkPassword === undefined && isCheapScheme(record.password)) {
      // One digest (PLAIN, SSHA…): microseconds against the dummies' milliseconds. Checked first,
      // so a success pays for nothing else (a first login after a start cost ~120 ms of CPU
      // when the dummies ran beside it: docs/benchmarks.md); a failure then pays both dummies,
      // and takes their time plus that digest, as an unknown user takes their time (R-S13).
      if (!(await this.verify(record.password, password))) {
        await this.failure(password, undefined);
        return undefined;
      }
    } else if (own === undefined) {
      // A scheme of neither class and not cheap (bcrypt, SHA256-CRYPT, another cost, a locked field):
      // its check runs beside both dummies, so a failure takes max(own, dummies) like an unknown
      // user's, whatever the scheme costs below them; a success here pays the dummies too.
      // An LDAP bind (record.checkPassword) is such a check too.
      const check = record.checkPassword ?? ((pw: string) => this.verify(record.password, pw));
      const [ok] = await Promise.all([check(password), this.failure(password, undefined)]);
      if (!ok) return undefined;
    } else if (!(await this.verify(record.password, password))) {
      await this.failure(password, own);
      return undefined;
    }
    this.cache.remember(record.name, record.password, password);
    return record;
  }

  /** The dummies a failure pays for beyond its own check, one after another as that check ran. */
  private async failure(password: string, done: DummyKind | undefined): Promise<void> {
    for (const kind of DUMMY_KINDS) if (kind !== done) await this.dummy(password, kind, this.opts.scryptCost);
  }
}

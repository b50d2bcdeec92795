/**
 * Verifies a login against the user directory. R-S13: an unknown user and a wrong password fail
 * alike and take the same time, because an unknown user is checked against a dummy hash of the
 * configured cost, and so is a user whose stored scheme is not scrypt (it would answer sooner). Returns the user's record, or undefined on any failure.
 */
import type { UserDirectory, UserRecord } from './directory.js';
import { schemeOf, verifyDummy, verifyPassword } from './password.js';

export interface AuthenticatorOptions {
  /** log2 of scrypt's N for the dummy check, the cost new hashes are made with. */
  readonly scryptCost: number;
}

export class Authenticator {
  constructor(
    private readonly directory: UserDirectory,
    private readonly opts: AuthenticatorOptions,
  ) {}

  /** The user's record, for mechanisms that verify their own proof (SCRAM, CRAM-MD5, NTLM, APOP). */
  lookup(name: string): Promise<UserRecord | undefined> {
    return this.directory.lookup(name);
  }

  async login(name: string, password: string): Promise<UserRecord | undefined> {
    const record = await this.directory.lookup(name);
    if (record === undefined) {
      await verifyDummy(password, this.opts.scryptCost);
      return undefined;
    }
    if (schemeOf(record.password) === 'SCRYPT') {
      return (await verifyPassword(record.password, password)) ? record : undefined;
    }
    // A fast scheme (a Dovecot {SSHA512}), a locked or malformed password field would answer
    // sooner than an unknown user does: add the dummy's cost so no user stands out (R-S13).
    const [ok] = await Promise.all([verifyPassword(record.password, password), verifyDummy(password, this.opts.scryptCost)]);
    return ok ? record : undefined;
  }
}

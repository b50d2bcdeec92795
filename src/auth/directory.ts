/**
 * The user directory: who exists, what credential is stored for them, and which other maildrops
 * they were granted (R-K3). Pre-login code depends on this interface only, never on storage.
 */

export interface UserRecord {
  /** The login name (also the name of the user's own maildrop). */
  readonly name: string;
  /** Stored credential with its scheme, e.g. `{SCRYPT}$scrypt$ln=15,r=8,p=1$<salt>$<hash>`. */
  readonly password: string;
  /** R-K3: other maildrops this user may open with `USER name/mailbox` (`poplar grant`). */
  readonly grants: readonly string[];
  /**
   * Extra credentials a challenge mechanism needs, from the `poplar_*` extra fields (see
   * auth/credentials.ts): `poplar_scram`, `poplar_nt`, `poplar_cram`, `poplar_secret`. Absent keys: not stored.
   */
  readonly credentials?: Readonly<Record<string, string>>;
}

export interface UserDirectory {
  /** The record for `name`, or undefined. Implementations pick up changes without a restart. */
  lookup(name: string): Promise<UserRecord | undefined>;
}

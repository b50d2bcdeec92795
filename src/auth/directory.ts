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

/**
 * R-X21: what an administrator may do with a directory, so the admin API serves users from any
 * backend. `writable: true`: poplar owns the records (the passwd file) and may add, change and
 * remove them. `writable: false`: the records belong to another system (LDAP); users and grants
 * are listed read-only and `note` says where to change them.
 */
export interface ListableDirectory extends UserDirectory {
  readonly writable: boolean;
  /** Every user, in the directory's order. */
  list(): Promise<UserRecord[]>;
}

export interface ReadOnlyDirectory extends ListableDirectory {
  readonly writable: false;
  /** Shown by the API and the console, e.g. "users come from LDAP ldap://…; change them there". */
  readonly note: string;
}

export interface WritableDirectory extends ListableDirectory {
  readonly writable: true;
  /** `hash`: a stored credential with its scheme; `credentials`: the `poplar_*` extra fields. */
  add(name: string, hash: string, credentials?: Readonly<Record<string, string>>): Promise<void>;
  setPassword(name: string, hash: string, credentials?: Readonly<Record<string, string>>): Promise<void>;
  remove(name: string): Promise<void>;
  grant(user: string, mailbox: string): Promise<void>;
  revoke(user: string, mailbox: string): Promise<void>;
}

export type AdminDirectory = ReadOnlyDirectory | WritableDirectory;

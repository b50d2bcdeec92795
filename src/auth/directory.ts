/**
 * The user directory: who exists, what credential is stored for them, and which other maildrops
 * they were granted (R-K3). Pre-login code depends on this interface only, never on storage.
 * Implementations: PasswdFile (passwd-file.ts), LdapDirectory (ldap-directory.ts). A directory that
 * cannot answer throws DirectoryError (errors.ts); it never answers "no such user" for that.
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
  /** The user's own maildrop when it is not named like the user (LDAP `maildrop_attribute`). */
  readonly maildrop?: string;
  /** R-X14: a master user by the directory's say (LDAP `master_attribute`), besides `auth.master_users`. */
  readonly master?: boolean;
  /**
   * Set by a directory that checks the password itself (LDAP bind mode): true when `password` is
   * right, false when wrong; throws DirectoryError when the directory cannot tell. `password`
   * then holds no hash, only what identifies the entry's state for the login cache.
   */
  readonly checkPassword?: (password: string) => Promise<boolean>;
}

export interface UserDirectory {
  /** The record for `name`, or undefined. Implementations pick up changes without a restart. */
  lookup(name: string): Promise<UserRecord | undefined>;
  /**
   * The user whose mail address is `address` (LDAP `mail_attribute`), for LMTP recipients; absent
   * where users have no addresses (the passwd-file).
   */
  lookupAddress?(address: string): Promise<UserRecord | undefined>;
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

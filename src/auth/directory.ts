/**
 * The user directory: who exists, what credential is stored for them, and which other maildrops
 * they were granted (R-K3). Pre-login code depends on `UserDirectory` only, never on storage; the
 * admin commands (`poplar user`, `poplar grant`) and the admin API on `ManagedDirectory` /
 * `AdminDirectory`. Implementations: the passwd-file (passwd-file.ts, R-X8), PostgreSQL
 * (postgres-directory.ts, R-X17) and LDAP (ldap-directory.ts, R-X19, read-only), chosen by the
 * composition root (cli/compose.ts) from `auth.directory`. A directory that cannot answer throws
 * DirectoryUnavailableError or UnavailableError (errors.ts); it never answers "no such user" for that.
 */

export interface UserRecord {
  /** The login name (also the name of the user's own maildrop). */
  readonly name: string;
  /** Stored credential with its scheme, e.g. `{SCRYPT}$scrypt$ln=15,r=8,p=1$<salt>$<hash>`. */
  readonly password: string;
  /** R-K3: other maildrops this user may open with `USER name/mailbox` (`poplar grant`). */
  readonly grants: readonly string[];
  /**
   * Extra credentials a challenge mechanism needs, keyed by CREDENTIAL_KEYS (see
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
  /**
   * The record of the first of `names` that is a user, asked in one request (an LMTP recipient's
   * candidate names, delivery/agent.ts resolve); absent where lookup() per name costs no request.
   */
  lookupFirst?(names: readonly string[]): Promise<UserRecord | undefined>;
}

/** The keys of the credentials challenge mechanisms need (auth/credentials.ts); in the users file, extra fields. */
export const CREDENTIAL_KEYS = ['poplar_scram', 'poplar_nt', 'poplar_cram', 'poplar_secret'] as const;
export type CredentialKey = (typeof CREDENTIAL_KEYS)[number];
export type Credentials = Partial<Record<CredentialKey, string>>;

/**
 * `UNAVAILABLE`: the directory could not be asked (a database down or timing out); the login
 * gets `-ERR [SYS/TEMP]`, a command one line.
 */
export type DirectoryErrorCode = 'INVALID_NAME' | 'EXISTS' | 'NO_SUCH_USER' | 'ALREADY_GRANTED' | 'NOT_GRANTED' | 'FILE' | 'UNAVAILABLE';

/** An expected failure of a directory change; the CLI prints its message as one line. */
export class DirectoryError extends Error {
  readonly code: DirectoryErrorCode;
  constructor(code: DirectoryErrorCode, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'DirectoryError';
    this.code = code;
  }
}

/** What the admin commands change; every implementation gives the same errors with the same texts. */
export interface ManagedDirectory extends UserDirectory {
  /** Where the users are kept, for messages: the users file's path, or "PostgreSQL". */
  readonly where: string;
  /** Every user, in the order they were added (a file: file order, first line per name). */
  list(): Promise<UserRecord[]>;
  /** Adds a user with a stored credential such as hashPassword() returns. EXISTS, INVALID_NAME. */
  add(name: string, hash: string, credentials?: Credentials): Promise<void>;
  /**
   * Sets the password and, when `credentials` is given, replaces every stored credential with
   * those given (a mechanism no longer enabled loses its stale secret). NO_SUCH_USER.
   */
  setPassword(name: string, hash: string, credentials?: Credentials): Promise<void>;
  /** Removes the user and their grants. Mail is not touched. NO_SUCH_USER. */
  remove(name: string): Promise<void>;
  /** R-K3: lets `user` open maildrop `mailbox` with `USER user/mailbox`. */
  grant(user: string, mailbox: string): Promise<void>;
  revoke(user: string, mailbox: string): Promise<void>;
  /** Lets go of connections (a no-op for a file). */
  close(): Promise<void>;
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

/** A directory poplar owns (the passwd-file, PostgreSQL): the admin API may change it. */
export interface WritableDirectory extends ListableDirectory, ManagedDirectory {
  readonly writable: true;
}

export type AdminDirectory = ReadOnlyDirectory | WritableDirectory;

/**
 * The user directory in PostgreSQL (R-X17, R-X8, R-K3): `auth.directory = "postgres"`. Every node
 * of a cluster reads the same users, credentials and grants; `poplar user` and `poplar grant`
 * change them with the same checks, errors and texts as the passwd-file (passwd-file.ts).
 *
 *   users        name (primary key), password (with its `{SCHEME}`), scram, nt, cram, secret
 *                  (the `poplar_*` credentials of auth/credentials.ts), id (the order added)
 *   user_grants  user_name → users ON DELETE CASCADE, mailbox, id (the order granted)
 *
 * (migrations/100-directory.sql). Every change is one statement, so two admins racing each other
 * get one success and one clear error, as under the users file's lock. A look-up is one query,
 * never cached here: a change is seen by every node at its next login. A query that fails (the
 * database down, a timeout, no schema) rejects with DirectoryError `UNAVAILABLE`: the login gets
 * `-ERR [SYS/TEMP]` (never a login without a check), a command one line.
 */
import type { Sql } from 'postgres';
import { unavailableText } from '../errors.js';
import { printableName, userNameProblem } from '../user-name.js';
import { CREDENTIAL_KEYS, DirectoryError, type Credentials, type CredentialKey, type WritableDirectory, type UserRecord } from './directory.js';

/** The column of each credential key. */
const COLUMN: Record<CredentialKey, 'scram' | 'nt' | 'cram' | 'secret'> = {
  poplar_scram: 'scram',
  poplar_nt: 'nt',
  poplar_cram: 'cram',
  poplar_secret: 'secret',
};

interface UserRow {
  name: string;
  password: string;
  scram: string | null;
  nt: string | null;
  cram: string | null;
  secret: string | null;
  grants: string[] | null;
}

function toRecord(row: UserRow): UserRecord {
  const record = { name: row.name, password: row.password, grants: row.grants ?? [] };
  const credentials: Record<string, string> = {};
  for (const key of CREDENTIAL_KEYS) {
    const value = row[COLUMN[key]];
    if (value !== null) credentials[key] = value;
  }
  return Object.keys(credentials).length === 0 ? record : { ...record, credentials };
}

function checkName(name: string): void {
  const problem = userNameProblem(name);
  if (problem !== undefined) throw new DirectoryError('INVALID_NAME', `invalid name ${printableName(name)}: ${problem}`);
}

/** The credential columns' values for an insert or update: null where none is given. */
function credentialValues(credentials: Credentials | undefined): Record<'scram' | 'nt' | 'cram' | 'secret', string | null> {
  return {
    scram: credentials?.poplar_scram ?? null,
    nt: credentials?.poplar_nt ?? null,
    cram: credentials?.poplar_cram ?? null,
    secret: credentials?.poplar_secret ?? null,
  };
}

export interface PostgresDirectoryOptions {
  /** Where the one line per skipped row goes (a name breaking the rule, put in by hand); by default stderr. */
  warn?: (message: string) => void;
}

export class PostgresDirectory implements WritableDirectory {
  readonly where = 'PostgreSQL';
  /** R-X21: poplar owns these rows, so the admin API may change them. */
  readonly writable = true as const;
  private readonly warn: (message: string) => void;
  private readonly warned = new Set<string>();

  /** `sql`: the process's pool (cli/compose.ts), shared with the store; `close` does not end it. */
  constructor(
    private readonly sql: Sql,
    opts: PostgresDirectoryOptions = {},
  ) {
    this.warn = opts.warn ?? ((message) => process.stderr.write(`poplar: ${message}\n`));
  }

  async close(): Promise<void> {}

  /** Runs one statement; a failure of the database (not of the request) becomes UNAVAILABLE. */
  private async query<T>(run: (sql: Sql) => Promise<T>): Promise<T> {
    try {
      return await run(this.sql);
    } catch (err) {
      if (err instanceof DirectoryError) throw err;
      throw new DirectoryError('UNAVAILABLE', unavailableText('the user directory (PostgreSQL)', err), err);
    }
  }

  private rows(name: string | readonly string[] | undefined): Promise<UserRow[]> {
    return this.query((sql) => sql<UserRow[]>`
      SELECT u.name, u.password, u.scram, u.nt, u.cram, u.secret,
             ARRAY(SELECT g.mailbox FROM user_grants g WHERE g.user_name = u.name ORDER BY g.id) AS grants
        FROM users u
        ${name === undefined ? sql`ORDER BY u.id` : typeof name === 'string' ? sql`WHERE u.name = ${name}` : sql`WHERE u.name = ANY(${name as string[]}::text[])`}`);
  }

  /** A name breaking the rule (a row put in by hand) is no user: skipped with one warning, as in the file. */
  private usable(row: UserRow): boolean {
    const problem = userNameProblem(row.name);
    if (problem === undefined) return true;
    if (!this.warned.has(row.name)) {
      this.warned.add(row.name);
      this.warn(`users: user ${printableName(row.name)} skipped: ${problem}`);
    }
    return false;
  }

  async lookup(name: string): Promise<UserRecord | undefined> {
    const row = (await this.rows(name))[0];
    return row === undefined || !this.usable(row) ? undefined : toRecord(row);
  }

  /** One query for every name; the first name (in the order given) that is a usable user wins. */
  async lookupFirst(names: readonly string[]): Promise<UserRecord | undefined> {
    const rows = await this.rows(names);
    for (const name of names) {
      const row = rows.find((r) => r.name === name);
      if (row !== undefined && this.usable(row)) return toRecord(row);
    }
    return undefined;
  }

  async list(): Promise<UserRecord[]> {
    return (await this.rows(undefined)).filter((r) => this.usable(r)).map(toRecord);
  }

  async add(name: string, hash: string, credentials?: Credentials): Promise<void> {
    checkName(name);
    const c = credentialValues(credentials);
    const added = await this.query((sql) => sql`
      INSERT INTO users (name, password, scram, nt, cram, secret)
      VALUES (${name}, ${hash}, ${c.scram}, ${c.nt}, ${c.cram}, ${c.secret})
      ON CONFLICT (name) DO NOTHING
      RETURNING 1`);
    if (added.length === 0) throw new DirectoryError('EXISTS', `user "${name}" already exists`);
  }

  async setPassword(name: string, hash: string, credentials?: Credentials): Promise<void> {
    const c = credentialValues(credentials);
    const keep = credentials === undefined;
    const changed = await this.query((sql) => sql`
      UPDATE users SET password = ${hash},
             scram = CASE WHEN ${keep} THEN scram ELSE ${c.scram} END,
             nt = CASE WHEN ${keep} THEN nt ELSE ${c.nt} END,
             cram = CASE WHEN ${keep} THEN cram ELSE ${c.cram} END,
             secret = CASE WHEN ${keep} THEN secret ELSE ${c.secret} END
       WHERE name = ${name}
      RETURNING 1`);
    if (changed.length === 0) throw new DirectoryError('NO_SUCH_USER', `no such user "${name}"`);
  }

  async remove(name: string): Promise<void> {
    const removed = await this.query((sql) => sql`DELETE FROM users WHERE name = ${name} RETURNING 1`);
    if (removed.length === 0) throw new DirectoryError('NO_SUCH_USER', `no such user "${name}"`);
  }

  async grant(user: string, mailbox: string): Promise<void> {
    checkName(mailbox);
    if (mailbox === user) throw new DirectoryError('ALREADY_GRANTED', `"${mailbox}" is ${user}'s own maildrop`);
    const [r] = await this.query((sql) => sql<Array<{ known: boolean; granted: boolean }>>`
      WITH u AS (SELECT name FROM users WHERE name = ${user} FOR KEY SHARE),
           ins AS (INSERT INTO user_grants (user_name, mailbox) SELECT name, ${mailbox} FROM u
                   ON CONFLICT (user_name, mailbox) DO NOTHING RETURNING 1)
      SELECT EXISTS (SELECT 1 FROM u) AS known, EXISTS (SELECT 1 FROM ins) AS granted`);
    if (r?.known !== true) throw new DirectoryError('NO_SUCH_USER', `no such user "${user}"`);
    if (!r.granted) throw new DirectoryError('ALREADY_GRANTED', `${user} already has access to ${mailbox}`);
  }

  async revoke(user: string, mailbox: string): Promise<void> {
    const [r] = await this.query((sql) => sql<Array<{ known: boolean; revoked: boolean }>>`
      WITH u AS (SELECT name FROM users WHERE name = ${user}),
           del AS (DELETE FROM user_grants WHERE user_name = ${user} AND mailbox = ${mailbox} RETURNING 1)
      SELECT EXISTS (SELECT 1 FROM u) AS known, EXISTS (SELECT 1 FROM del) AS revoked`);
    if (r?.known !== true) throw new DirectoryError('NO_SUCH_USER', `no such user "${user}"`);
    if (!r.revoked) throw new DirectoryError('NOT_GRANTED', `${user} has no access to ${mailbox}`);
  }
}

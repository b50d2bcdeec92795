/**
 * The passwd-file user directory (R-X8), in Dovecot's passwd-file format:
 *   user:{SCHEME}hash:uid:gid:gecos:home:shell:extra fields
 * Trailing fields may be missing; `#` comments and blank lines are skipped. Extra fields are
 * space-separated `key=value` tokens and may contain `:`; poplar keeps R-K3 grants in one of them,
 * `poplar_grants=box1,box2`. Changes are made under the file's lock and written atomically with
 * the file's owner and mode (storage/admin-file.ts), keeping every line and field poplar does not
 * change byte for byte. A line whose name breaks the name rule (src/user-name.ts) is no user:
 * it is skipped, with one warning per line, and kept in the file as it is.
 */
import { readFile, stat } from 'node:fs/promises';
import { AdminFileError, editFile } from '../storage/admin-file.js';
import { CREDENTIAL_KEYS, DirectoryError, type Credentials, type DirectoryErrorCode, type UserRecord, type WritableDirectory } from './directory.js';
import { printableName, userNameProblem } from '../user-name.js';

/** The directory's errors (directory.ts), as the users file raises them. */
export class PasswdFileError extends DirectoryError {
  constructor(code: DirectoryErrorCode, message: string) {
    super(code, message);
    this.name = 'PasswdFileError';
  }
}

const GRANTS_KEY = 'poplar_grants';
/** Dovecot's fields: user, password, uid, gid, gecos, home, shell, extra fields (the rest). */
const FIELD_COUNT = 8;
const EXTRA = FIELD_COUNT - 1;

function checkName(name: string): void {
  const problem = userNameProblem(name);
  if (problem !== undefined) throw new PasswdFileError('INVALID_NAME', `invalid name ${printableName(name)}: ${problem}`);
}

/** One line of the file; `fields` is set for user lines and is what gets written when changed. */
interface Line {
  raw: string;
  fields?: string[];
}

function parseLine(raw: string): Line {
  const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  if (text.trim() === '' || text.trimStart().startsWith('#')) return { raw };
  const parts = text.split(':');
  const fields = parts.slice(0, EXTRA);
  if (parts.length > EXTRA) fields.push(parts.slice(EXTRA).join(':'));
  return { raw, fields };
}

function serialize(fields: readonly string[]): string {
  const f = [...fields];
  while (f.length > 2 && f[f.length - 1] === '') f.pop();
  return f.join(':');
}

const extraTokens = (fields: readonly string[]): string[] => (fields[EXTRA] ?? '').split(/\s+/).filter((t) => t !== '');

function grantsOf(fields: readonly string[]): string[] {
  const token = extraTokens(fields).find((t) => t.startsWith(`${GRANTS_KEY}=`));
  return token === undefined ? [] : token.slice(GRANTS_KEY.length + 1).split(',').filter((g) => g !== '');
}

/** Replaces the grants token in the extra fields, keeping every other token in place. */
function withGrants(fields: readonly string[], grants: readonly string[]): string[] {
  return withExtra(fields, GRANTS_KEY, grants.length === 0 ? undefined : grants.join(','));
}

function credentialsOf(fields: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of extraTokens(fields)) {
    const eq = t.indexOf('=');
    const key = t.slice(0, eq);
    if (eq > 0 && (CREDENTIAL_KEYS as readonly string[]).includes(key)) out[key] = t.slice(eq + 1);
  }
  return out;
}

/** Sets (or with undefined removes) one `key=value` token of the extra fields, keeping the others. */
function withExtra(fields: readonly string[], key: string, value: string | undefined): string[] {
  const f = [...fields];
  while (f.length < FIELD_COUNT) f.push('');
  const tokens = extraTokens(f);
  const i = tokens.findIndex((t) => t.startsWith(`${key}=`));
  if (value === undefined) {
    if (i >= 0) tokens.splice(i, 1);
  } else if (i >= 0) tokens[i] = `${key}=${value}`;
  else tokens.push(`${key}=${value}`);
  f[EXTRA] = tokens.join(' ');
  return f;
}

function toRecord(fields: readonly string[]): UserRecord {
  const record = { name: fields[0]!, password: fields[1] ?? '', grants: grantsOf(fields) };
  const credentials = credentialsOf(fields);
  return Object.keys(credentials).length === 0 ? record : { ...record, credentials };
}

function parseFile(text: string): Line[] {
  if (text === '') return [];
  const raws = text.split('\n');
  if (raws[raws.length - 1] === '') raws.pop();
  return raws.map(parseLine);
}

/** Records by name; the first line for a name wins, as in Dovecot. Lines with a bad name go to `skip`. */
function recordsOf(lines: readonly Line[], skip: (line: Line, n: number, problem: string) => void): Map<string, UserRecord> {
  const users = new Map<string, UserRecord>();
  lines.forEach((l, i) => {
    if (!l.fields) return;
    const name = l.fields[0]!;
    const problem = userNameProblem(name);
    if (problem !== undefined) skip(l, i + 1, problem);
    else if (!users.has(name)) users.set(name, toRecord(l.fields));
  });
  return users;
}

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

export interface PasswdFileOptions {
  /** lookup() stats the file at most this often; 1000 ms by default. */
  statIntervalMs?: number;
  /** Where the one line per skipped user line goes; by default to stderr. */
  warn?: (message: string) => void;
}

export class PasswdFile implements WritableDirectory {
  /** R-X21: poplar owns this file, so the admin API may change it. */
  readonly writable = true as const;
  readonly path: string;
  private readonly statIntervalMs: number;
  private readonly warn: (message: string) => void;
  /** Skipped lines already warned about, so each is reported once per instance. */
  private readonly warned = new Set<string>();
  private cache: { version: string; users: Map<string, UserRecord> } | undefined;
  private checkedAt = -Infinity;
  private pending: Promise<Map<string, UserRecord>> | undefined;

  constructor(path: string, opts: PasswdFileOptions = {}) {
    this.path = path;
    this.statIntervalMs = opts.statIntervalMs ?? 1000;
    this.warn = opts.warn ?? ((message) => process.stderr.write(`poplar: ${message}\n`));
  }

  get where(): string {
    return this.path;
  }

  async close(): Promise<void> {}

  private records(lines: readonly Line[]): Map<string, UserRecord> {
    return recordsOf(lines, (line, n, problem) => {
      if (this.warned.has(line.raw)) return;
      this.warned.add(line.raw);
      this.warn(`${this.path} line ${n}: user ${printableName(line.fields![0]!)} skipped: ${problem}`);
    });
  }

  /** The user's record, re-reading the file when its inode, size or mtime changed. Missing file: no users. */
  async lookup(name: string): Promise<UserRecord | undefined> {
    return (await this.users()).get(name);
  }

  private users(): Promise<Map<string, UserRecord>> {
    if (this.cache && performance.now() - this.checkedAt < this.statIntervalMs) {
      return Promise.resolve(this.cache.users);
    }
    this.pending ??= this.refresh().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async refresh(): Promise<Map<string, UserRecord>> {
    const checkedAt = performance.now();
    let version = 'missing';
    let users = new Map<string, UserRecord>();
    try {
      const st = await stat(this.path);
      version = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
      if (this.cache?.version === version) users = this.cache.users;
      else users = this.records(parseFile(await readFile(this.path, 'utf8')));
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
    this.cache = { version, users };
    this.checkedAt = checkedAt;
    return users;
  }

  private async readLines(): Promise<Line[]> {
    try {
      return parseFile(await readFile(this.path, 'utf8'));
    } catch (err) {
      if (isMissing(err)) return [];
      throw err;
    }
  }

  /** Reads the file fresh under its lock, lets `change` edit its lines, and writes it back atomically. */
  private async modify<T>(change: (lines: Line[]) => T): Promise<T> {
    try {
      return await editFile(this.path, (text) => {
        const lines = parseFile(text ?? '');
        const result = change(lines);
        return { text: lines.map((l) => l.raw + '\n').join(''), result };
      });
    } catch (err) {
      if (err instanceof AdminFileError) throw new PasswdFileError('FILE', err.message);
      throw err;
    } finally {
      this.checkedAt = -Infinity;
    }
  }

  private static find(lines: readonly Line[], name: string): Line {
    const line = lines.find((l) => l.fields?.[0] === name);
    if (!line?.fields) throw new PasswdFileError('NO_SUCH_USER', `no such user "${name}"`);
    return line;
  }

  private static setFields(line: Line, fields: string[]): void {
    line.fields = fields;
    line.raw = serialize(fields);
  }

  /** Every user, in file order (first line per name). */
  async list(): Promise<UserRecord[]> {
    return [...this.records(await this.readLines()).values()];
  }

  /** Adds a user with a stored credential such as hashPassword() returns. */
  async add(name: string, hash: string, credentials?: Credentials): Promise<void> {
    checkName(name);
    await this.modify((lines) => {
      if (lines.some((l) => l.fields?.[0] === name)) throw new PasswdFileError('EXISTS', `user "${name}" already exists`);
      let fields = [name, hash];
      for (const key of CREDENTIAL_KEYS) {
        const value = credentials?.[key];
        if (value !== undefined) fields = withExtra(fields, key, value);
      }
      lines.push({ raw: serialize(fields), fields });
    });
  }

  /**
   * Sets the password field and, when `credentials` is given, replaces every `poplar_*`
   * credential token with those given (a mechanism no longer enabled loses its stale secret).
   */
  async setPassword(name: string, hash: string, credentials?: Credentials): Promise<void> {
    await this.modify((lines) => {
      const line = PasswdFile.find(lines, name);
      let fields = [...line.fields!];
      fields[1] = hash;
      if (credentials !== undefined) {
        for (const key of CREDENTIAL_KEYS) fields = withExtra(fields, key, credentials[key]);
      }
      PasswdFile.setFields(line, fields);
    });
  }

  /** Removes every line for the user. Mail is not touched. */
  async remove(name: string): Promise<void> {
    await this.modify((lines) => {
      PasswdFile.find(lines, name);
      for (let i = lines.length - 1; i >= 0; i--) if (lines[i]!.fields?.[0] === name) lines.splice(i, 1);
    });
  }

  /**
   * R-K3: lets `user` open maildrop `mailbox` with `USER user/mailbox`. `create`: a user of
   * another directory (LDAP) gets a line holding only the grants, its password field locked (`!`).
   */
  async grant(user: string, mailbox: string, opts: { create?: boolean } = {}): Promise<void> {
    checkName(mailbox);
    if (mailbox === user) throw new PasswdFileError('ALREADY_GRANTED', `"${mailbox}" is ${user}'s own maildrop`);
    await this.modify((lines) => {
      if (opts.create === true && !lines.some((l) => l.fields?.[0] === user)) lines.push({ raw: `${user}:!`, fields: [user, '!'] });
      const line = PasswdFile.find(lines, user);
      const grants = grantsOf(line.fields!);
      if (grants.includes(mailbox)) throw new PasswdFileError('ALREADY_GRANTED', `${user} already has access to ${mailbox}`);
      PasswdFile.setFields(line, withGrants(line.fields!, [...grants, mailbox]));
    });
  }

  async revoke(user: string, mailbox: string): Promise<void> {
    await this.modify((lines) => {
      const line = PasswdFile.find(lines, user);
      const grants = grantsOf(line.fields!);
      if (!grants.includes(mailbox)) throw new PasswdFileError('NOT_GRANTED', `${user} has no access to ${mailbox}`);
      PasswdFile.setFields(line, withGrants(line.fields!, grants.filter((g) => g !== mailbox)));
    });
  }
}

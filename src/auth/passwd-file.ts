/**
 * The passwd-file user directory (R-X8), in Dovecot's passwd-file format:
 *   user:{SCHEME}hash:uid:gid:gecos:home:shell:extra fields
 * Trailing fields may be missing; `#` comments and blank lines are skipped. Extra fields are
 * space-separated `key=value` tokens and may contain `:`; poplar keeps R-K3 grants in one of them,
 * `poplar_grants=box1,box2`. Writes are atomic (temp file, fsync, rename, mode 0600) and keep
 * every line and field poplar does not change byte for byte.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { UserDirectory, UserRecord } from './directory.js';

export type PasswdFileErrorCode = 'INVALID_NAME' | 'EXISTS' | 'NO_SUCH_USER' | 'ALREADY_GRANTED' | 'NOT_GRANTED';

export class PasswdFileError extends Error {
  readonly code: PasswdFileErrorCode;
  constructor(code: PasswdFileErrorCode, message: string) {
    super(message);
    this.name = 'PasswdFileError';
    this.code = code;
  }
}

const GRANTS_KEY = 'poplar_grants';
/** Dovecot's fields: user, password, uid, gid, gecos, home, shell, extra fields (the rest). */
const FIELD_COUNT = 8;
const EXTRA = FIELD_COUNT - 1;

/**
 * Why `name` cannot be a user or maildrop name, or undefined when it can. `:` and newlines would
 * break the file format, `,` the grants list, `/`, `\` and a leading `.` would escape or hide in
 * the Maildir tree, a leading `#` would read as a comment.
 */
export function nameProblem(name: string): string | undefined {
  if (name.length === 0) return 'name is empty';
  if (Buffer.byteLength(name, 'utf8') > 255) return 'name is longer than 255 bytes';
  if (/[\s\p{Cc}]/u.test(name)) return 'name contains whitespace or a control character';
  if (/[:/\\,]/.test(name)) return 'name contains one of : / \\ ,';
  if (name.startsWith('.') || name.startsWith('#')) return 'name starts with . or #';
  return undefined;
}

function checkName(name: string): void {
  const problem = nameProblem(name);
  if (problem !== undefined) throw new PasswdFileError('INVALID_NAME', `invalid name "${name}": ${problem}`);
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

/** Extra-field keys that hold credentials for challenge mechanisms (auth/credentials.ts). */
export const CREDENTIAL_KEYS = ['poplar_scram', 'poplar_nt', 'poplar_cram', 'poplar_secret'] as const;
export type CredentialKey = (typeof CREDENTIAL_KEYS)[number];

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

/** Records by name; the first line for a name wins, as in Dovecot. */
function recordsOf(lines: readonly Line[]): Map<string, UserRecord> {
  const users = new Map<string, UserRecord>();
  for (const l of lines) if (l.fields && !users.has(l.fields[0]!)) users.set(l.fields[0]!, toRecord(l.fields));
  return users;
}

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

async function writeAtomic(path: string, text: string): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.chmod(0o600);
      await fh.writeFile(text, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

export interface PasswdFileOptions {
  /** lookup() stats the file at most this often; 1000 ms by default. */
  statIntervalMs?: number;
}

export class PasswdFile implements UserDirectory {
  readonly path: string;
  private readonly statIntervalMs: number;
  private cache: { version: string; users: Map<string, UserRecord> } | undefined;
  private checkedAt = -Infinity;
  private pending: Promise<Map<string, UserRecord>> | undefined;

  constructor(path: string, opts: PasswdFileOptions = {}) {
    this.path = path;
    this.statIntervalMs = opts.statIntervalMs ?? 1000;
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
      else users = recordsOf(parseFile(await readFile(this.path, 'utf8')));
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

  /** Reads the file fresh, lets `change` edit its lines, and writes it back atomically. */
  private async modify<T>(change: (lines: Line[]) => T): Promise<T> {
    const lines = await this.readLines();
    const result = change(lines);
    await writeAtomic(this.path, lines.map((l) => l.raw + '\n').join(''));
    this.checkedAt = -Infinity;
    return result;
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
    return [...recordsOf(await this.readLines()).values()];
  }

  /** Adds a user with a stored credential such as hashPassword() returns. */
  async add(name: string, hash: string, credentials?: Partial<Record<CredentialKey, string>>): Promise<void> {
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
  async setPassword(name: string, hash: string, credentials?: Partial<Record<CredentialKey, string>>): Promise<void> {
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

  /** R-K3: lets `user` open maildrop `mailbox` with `USER user/mailbox`. */
  async grant(user: string, mailbox: string): Promise<void> {
    checkName(mailbox);
    if (mailbox === user) throw new PasswdFileError('ALREADY_GRANTED', `"${mailbox}" is ${user}'s own maildrop`);
    await this.modify((lines) => {
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

/**
 * The LDAP user directory (R-X19), `auth.directory = "ldap"`. A user is the one entry under
 * `base_dn` (subtree) matching `user_filter` with `%u` replaced by the name, escaped per RFC 4515
 * (ldapFilterValue); no entry, or more than one, is no user. Look-ups run on connections bound as
 * the service account (`bind_dn`); a password is checked
 *   - `bind` mode: by binding as the entry's DN on a connection of its own pool, never the
 *     look-up pool (UserRecord.checkPassword); an empty password is refused before any bind,
 *     since an LDAP bind with one is an unauthenticated bind that succeeds (RFC 4513 §5.1.2);
 *   - `compare` mode: the entry's `password_attribute` (a `{SCHEME}` hash) is the record's
 *     password, verified by the Authenticator like a passwd-file hash; the challenge mechanisms
 *     read it too (credentials.ts).
 * Either way the Authenticator adds the same dummy work to every failure (R-S13), and the login
 * cache covers these logins: in bind mode the record's password field holds the DN and the
 * entry's modification stamps, so a password changed in the directory misses the cache.
 *
 * A directory that cannot answer (down, too slow, refusing the service bind) throws
 * DirectoryUnavailableError: `-ERR [SYS/TEMP]` at login, `451` at LMTP RCPT; never a login without a check.
 * Grants (R-K3) stay in poplar's users file (`poplar grant`); quotas from `quota_attribute` are
 * kept per maildrop as last seen by a look-up (quotaOf), under any `poplar quota set` value.
 */
import type { Client, Entry } from 'ldapts';
import { DirectoryUnavailableError } from '../errors.js';
import { printableName, userNameProblem } from '../user-name.js';
import type { ReadOnlyDirectory, UserRecord } from './directory.js';
import { isLdapResult, LdapPool, type LdapServerOptions } from './ldap-pool.js';

/** Connections per pool (look-ups; user binds). */
const POOL_SIZE = 4;
/** Maildrops whose directory quota is remembered (quotaOf); the oldest are dropped beyond it. */
const MAX_QUOTAS = 100_000;
/** LDAP result codes that say the server cannot serve now, not "no": busy, unavailable. */
const TEMPORARY_RESULTS = new Set([51, 52]);
/** Operational attributes that change when an entry (its password) changes: OpenLDAP, Active Directory. */
const STAMP_ATTRIBUTES = ['modifyTimestamp', 'pwdChangedTime', 'whenChanged', 'pwdLastSet'];

export interface LdapAttributes {
  readonly user: string;
  /** `''`: off, for every one but `user`. */
  readonly mail: string;
  readonly maildrop: string;
  readonly quota: string;
  readonly master: string;
  readonly password: string;
}

export interface LdapDirectoryOptions {
  readonly server: LdapServerOptions;
  readonly baseDn: string;
  /** RFC 4515 filter with `%u`. */
  readonly userFilter: string;
  /** `''`: anonymous look-ups. */
  readonly bindDn: string;
  readonly bindPassword: string;
  readonly passwordMode: 'bind' | 'compare';
  readonly attributes: LdapAttributes;
  /** R-K3: the maildrops granted to `name` (poplar's users file). */
  readonly grants?: (name: string) => Promise<readonly string[]>;
  /** Where a skipped entry is reported (a bad name, an ambiguous filter); stderr by default. */
  readonly warn?: (message: string) => void;
}

/** RFC 4515 §3: `*`, `(`, `)`, `\` and NUL in an assertion value as `\XX`. */
export function ldapFilterValue(value: string): string {
  return value.replace(/[*()\\\0]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** The first value of an attribute, by name compared case-insensitively (LDAP names are). */
function first(entry: Entry, name: string): string | undefined {
  if (name === '') return undefined;
  const key = Object.keys(entry).find((k) => k.toLowerCase() === name.toLowerCase());
  const value = key === undefined ? undefined : entry[key];
  const one = Array.isArray(value) ? value[0] : value;
  return one === undefined ? undefined : Buffer.isBuffer(one) ? one.toString('utf8') : one;
}

/** Octets, or with K, M, G (powers of 1024), as `quota.bytes`; undefined when not a size. */
export function parseQuota(text: string | undefined): number | undefined {
  const m = text === undefined ? null : /^\s*(\d{1,15})\s*([KMG]?)B?\s*$/i.exec(text);
  if (m === null) return undefined;
  return Number(m[1]) * 1024 ** ' KMG'.indexOf((m[2] || ' ').toUpperCase());
}

export class LdapDirectory implements ReadOnlyDirectory {
  /** R-X21: the admin API lists LDAP users read-only; they are changed in the directory. */
  readonly writable = false as const;
  readonly note: string;
  private readonly lookups: LdapPool;
  private readonly binds: LdapPool;
  private readonly quotas = new Map<string, number>();
  private readonly warn: (message: string) => void;
  private readonly attributes: string[];

  constructor(private readonly opts: LdapDirectoryOptions) {
    const { bindDn, bindPassword } = opts;
    this.note = `users live in the LDAP directory ${opts.server.urls.join(' ')}: add, change and remove them there`;
    this.lookups = new LdapPool(opts.server, POOL_SIZE, async (client) => {
      if (bindDn !== '') await client.bind(bindDn, bindPassword);
    });
    this.binds = new LdapPool(opts.server, POOL_SIZE, async () => undefined);
    this.warn = opts.warn ?? ((message) => process.stderr.write(`poplar: ${message}\n`));
    const a = opts.attributes;
    this.attributes = [a.user, a.mail, a.maildrop, a.quota, a.master].filter((n) => n !== '');
    if (opts.passwordMode === 'compare') this.attributes.push(a.password);
    else this.attributes.push(...STAMP_ATTRIBUTES);
  }

  async lookup(name: string): Promise<UserRecord | undefined> {
    if (name === '') return undefined;
    return this.findOne(this.filter(ldapFilterValue(name)));
  }

  /** The user whose `mail_attribute` is `address` (among the users `user_filter` finds). */
  async lookupAddress(address: string): Promise<UserRecord | undefined> {
    const mail = this.opts.attributes.mail;
    if (mail === '' || address === '') return undefined;
    return this.findOne(`(&${this.filter('*')}(${mail}=${ldapFilterValue(address)}))`);
  }

  /** Every user `user_filter` finds with `%u` as `*` (`poplar user list`, retention), skipping bad names. */
  async list(): Promise<UserRecord[]> {
    const entries = await this.search(this.filter('*'), 0);
    const records = await Promise.all(entries.map((e) => this.toRecord(e)));
    return records.filter((r): r is UserRecord => r !== undefined);
  }

  /** The quota `quota_attribute` gave `maildrop` at its last look-up, in octets. */
  quotaOf(maildrop: string): number | undefined {
    return this.quotas.get(maildrop);
  }

  async close(): Promise<void> {
    await Promise.all([this.lookups.close(), this.binds.close()]);
  }

  private filter(value: string): string {
    return this.opts.userFilter.replaceAll('%u', () => value);
  }

  private async findOne(filter: string): Promise<UserRecord | undefined> {
    let entries: Entry[];
    try {
      entries = await this.search(filter, 2);
    } catch (err) {
      if (!(isLdapResult(err) && err.code === 4)) throw err; // 4: sizeLimitExceeded
      entries = [{ dn: '' }, { dn: '' }];
    }
    if (entries.length > 1) {
      this.warn(`LDAP filter ${filter} matches more than one entry under ${this.opts.baseDn}: no user`);
      return undefined;
    }
    return entries.length === 0 ? undefined : this.toRecord(entries[0]!);
  }

  private async search(filter: string, sizeLimit: number): Promise<Entry[]> {
    const timeLimit = Math.ceil(this.opts.server.timeoutMs / 1000);
    try {
      const result = await this.lookups.use((c: Client) => c.search(this.opts.baseDn, {
        scope: 'sub', filter, attributes: this.attributes, sizeLimit, timeLimit, ...(sizeLimit === 0 ? { paged: true } : {}),
      }));
      return result.searchEntries;
    } catch (err) {
      if (err instanceof DirectoryUnavailableError || (isLdapResult(err) && err.code === 4)) throw err;
      // Any other LDAP result (no such base DN, a filter the server refuses, insufficient
      // access): the directory cannot say who is there.
      throw new DirectoryUnavailableError(`LDAP search ${filter} under ${this.opts.baseDn}: ${(err as Error).message}`, err);
    }
  }

  private async toRecord(entry: Entry): Promise<UserRecord | undefined> {
    const a = this.opts.attributes;
    const name = first(entry, a.user);
    const maildrop = first(entry, a.maildrop);
    const problem = name === undefined ? `has no ${a.user}` : userNameProblem(name) ?? (maildrop === undefined ? undefined : userNameProblem(maildrop));
    if (problem !== undefined || name === undefined) {
      this.warn(`LDAP entry ${printableName(entry.dn)} skipped: ${problem ?? ''}`);
      return undefined;
    }
    const quota = parseQuota(first(entry, a.quota));
    this.rememberQuota(maildrop ?? name, quota);
    const master = /^(true|1|yes)$/i.test(first(entry, a.master) ?? '');
    const grants = (await this.opts.grants?.(name)) ?? [];
    const base = {
      name,
      grants,
      ...(maildrop === undefined || maildrop === name ? {} : { maildrop }),
      ...(master ? { master } : {}),
    };
    if (this.opts.passwordMode === 'compare') return { ...base, password: first(entry, a.password) ?? '' };
    const stamps = STAMP_ATTRIBUTES.map((s) => first(entry, s) ?? '').join(' ');
    const dn = entry.dn;
    return { ...base, password: `{LDAP-BIND}${dn} ${stamps}`, checkPassword: (pw) => this.bindAs(dn, pw) };
  }

  private rememberQuota(maildrop: string, bytes: number | undefined): void {
    this.quotas.delete(maildrop);
    if (bytes === undefined) return;
    this.quotas.set(maildrop, bytes);
    if (this.quotas.size > MAX_QUOTAS) this.quotas.delete(this.quotas.keys().next().value!);
  }

  /** Bind mode's check: true when `dn` binds with `password`; any refusal but busy/unavailable is false. */
  private async bindAs(dn: string, password: string): Promise<boolean> {
    if (password === '') return false;
    try {
      await this.binds.use((c) => c.bind(dn, password));
      return true;
    } catch (err) {
      if (!isLdapResult(err)) throw err;
      if (TEMPORARY_RESULTS.has(err.code)) throw new DirectoryUnavailableError(`LDAP bind: ${err.message}`, err);
      return false;
    }
  }
}

/**
 * Per-user policy (R-S16 quotas, R-S18 retention, R-X10 poll and download policy): the server-wide defaults
 * of the config file, overridden per user by a small TOML file (`policy.users_file`) that the
 * admin tools write (`poplar quota set`, `poplar retention set`):
 *
 *   [alice]
 *   quota_bytes = 10485760
 *   retrieved_days = 7
 *
 * The file is read again whenever its mtime or size changes, so a running server sees changes
 * at once (R-S20). Changes are made under the file's lock and written atomically, keeping the
 * file's owner and mode (storage/admin-file.ts), so concurrent `quota set` commands all land.
 */
import { readFile, stat } from 'node:fs/promises';
import { parse, stringify } from 'smol-toml';
import { z } from 'zod';
import { editFile } from '../storage/admin-file.js';
import { byteSize } from './quota.js';
import { ConfigError } from '../errors.js';

/** Sizes may be written as in the config file and `poplar quota set` (`"100M"`, policy/quota.ts). */
const overrideSchema = z.strictObject({
  quota_bytes: byteSize(z.number().int().min(0).optional()),
  quota_messages: z.number().int().min(0).optional(),
  retrieved_days: z.number().int().min(0).optional(),
  unretrieved_days: z.number().int().min(0).optional(),
  login_delay: z.number().int().min(0).optional(),
  download_bytes_per_day: byteSize(z.number().int().min(0).optional()),
});

export type UserOverrides = z.infer<typeof overrideSchema>;
export type OverrideKey = keyof UserOverrides;
export const OVERRIDE_KEYS: readonly OverrideKey[] = Object.keys(overrideSchema.shape) as OverrideKey[];

/** One user's effective policy: 0 means unlimited / keep forever / not advertised. */
export interface EffectivePolicy {
  readonly quotaBytes: number;
  readonly quotaMessages: number;
  readonly retrievedDays: number;
  readonly unretrievedDays: number;
  readonly loginDelay: number;
  /** R-X10: octets RETR/TOP may send from the maildrop per UTC day; 0 is unlimited. */
  readonly downloadBytesPerDay: number;
}

/** What CAPA shows after login (RFC 2449 §6.5, §6.7) and what is enforced; implemented by UserPolicies. */
export interface PollPolicy {
  /** Capability lines for `mailbox` (after login), or the server-wide ones (before login). */
  capabilities(mailbox: string | undefined): Promise<string[]>;
  /** The effective policy of one maildrop (R-X10: login delay and daily download cap enforced). */
  get(mailbox: string): Promise<EffectivePolicy>;
}

/**
 * RFC 2449 §6.7: EXPIRE is the minimum number of days the server keeps a message (counted here
 * from its arrival, which §6.7 leaves to the server), and NEVER asserts that the server deletes
 * nothing, so it is shown only when neither retrieved nor unretrieved mail ever expires.
 */
export function expireValue(p: Pick<EffectivePolicy, 'retrievedDays' | 'unretrievedDays'>): string {
  const limits = [p.retrievedDays, p.unretrievedDays].filter((d) => d > 0);
  return limits.length === 0 ? 'NEVER' : String(Math.min(...limits));
}

/**
 * How long one stat(2) of the file answers for it. Every delivery (twice: RCPT and DATA) and
 * every login asks, and while the file does not exist each stat costs an ENOENT exception; a
 * change by another process (`poplar quota set`) is seen at most this much later.
 */
const RESTAT_MS = 100;

export class UserPolicies implements PollPolicy {
  private cache: { mtimeMs: number; size: number; users: Map<string, UserOverrides> } | undefined;
  /** The last load and when it stat'ed the file (RESTAT_MS). */
  private recent: { at: number; users: Map<string, UserOverrides> } | undefined;

  /**
   * `directoryQuota`: a maildrop's quota in octets from the user directory (LDAP
   * `quota_attribute`), used where the file sets none, before the default.
   */
  constructor(
    readonly path: string,
    private defaults: EffectivePolicy,
    private readonly directoryQuota?: (mailbox: string) => number | undefined,
  ) {}

  /** New defaults after a configuration reload. */
  setDefaults(defaults: EffectivePolicy): void {
    this.defaults = defaults;
  }

  async get(user: string): Promise<EffectivePolicy> {
    const o = (await this.load()).get(user) ?? {};
    const d = this.defaults;
    return {
      quotaBytes: o.quota_bytes ?? this.directoryQuota?.(user) ?? d.quotaBytes,
      quotaMessages: o.quota_messages ?? d.quotaMessages,
      retrievedDays: o.retrieved_days ?? d.retrievedDays,
      unretrievedDays: o.unretrieved_days ?? d.unretrievedDays,
      loginDelay: o.login_delay ?? d.loginDelay,
      downloadBytesPerDay: o.download_bytes_per_day ?? d.downloadBytesPerDay,
    };
  }

  /** Every user with an override, and the overrides. */
  async overrides(): Promise<ReadonlyMap<string, UserOverrides>> {
    return this.load();
  }

  async capabilities(mailbox: string | undefined): Promise<string[]> {
    if (mailbox !== undefined) {
      const p = await this.get(mailbox);
      const caps = [`EXPIRE ${expireValue(p)}`];
      if (p.loginDelay > 0) caps.push(`LOGIN-DELAY ${p.loginDelay}`);
      return caps;
    }
    // Before login: the server default, with USER when some user's value differs (§6.5, §6.7).
    const users = [...(await this.load()).values()];
    const varies = (keys: OverrideKey[]): string => (users.some((u) => keys.some((k) => u[k] !== undefined)) ? ' USER' : '');
    const caps = [`EXPIRE ${expireValue(this.defaults)}${varies(['retrieved_days', 'unretrieved_days'])}`];
    const delayVaries = varies(['login_delay']);
    if (this.defaults.loginDelay > 0 || delayVaries) caps.push(`LOGIN-DELAY ${this.defaults.loginDelay}${delayVaries}`);
    return caps;
  }

  /**
   * Sets (a number) or removes (null) override keys of one user: the file is read fresh and
   * rewritten under its lock, atomically, keeping its owner and mode (storage/admin-file.ts).
   */
  async update(user: string, changes: Partial<Record<OverrideKey, number | null>>): Promise<UserOverrides> {
    const checked = await editFile(this.path, (text) => {
      const users = text === undefined ? new Map<string, UserOverrides>() : this.parse(text);
      const next: Record<string, number> = { ...(users.get(user) ?? {}) };
      for (const [key, value] of Object.entries(changes)) {
        if (value === null) delete next[key];
        else if (value !== undefined) next[key] = value;
      }
      const result = overrideSchema.parse(next);
      if (Object.keys(result).length === 0) users.delete(user);
      else users.set(user, result);
      const toml = stringify(Object.fromEntries([...users].sort(([a], [b]) => (a < b ? -1 : 1))));
      return { text: `# poplar per-user policy; written by poplar quota/retention set\n${toml}\n`, result };
    });
    this.cache = undefined;
    this.recent = undefined;
    return checked;
  }

  private async load(): Promise<Map<string, UserOverrides>> {
    const now = performance.now();
    if (this.recent !== undefined && now - this.recent.at < RESTAT_MS) return this.recent.users;
    const users = await this.read();
    this.recent = { at: now, users };
    return users;
  }

  private async read(): Promise<Map<string, UserOverrides>> {
    let st;
    try {
      st = await stat(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw err;
    }
    const c = this.cache;
    if (c !== undefined && c.mtimeMs === st.mtimeMs && c.size === st.size) return c.users;
    const users = this.parse(await readFile(this.path, 'utf8'));
    this.cache = { mtimeMs: st.mtimeMs, size: st.size, users };
    return users;
  }

  /** The overrides of a policy file's text; every problem is reported together (ConfigError). */
  private parse(text: string): Map<string, UserOverrides> {
    const users = new Map<string, UserOverrides>();
    const problems: string[] = [];
    let table: Record<string, unknown>;
    try {
      table = parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError([`${this.path}: ${(err as Error).message.split('\n')[0]}`]);
    }
    for (const [name, value] of Object.entries(table)) {
      const r = overrideSchema.safeParse(value);
      if (r.success) users.set(name, r.data);
      else problems.push(...r.error.issues.map((i) => `${this.path}: [${name}] ${i.path.join('.')}: ${i.message}`));
    }
    if (problems.length > 0) throw new ConfigError(problems);
    return users;
  }
}

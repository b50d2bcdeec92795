/**
 * The per-user policy overrides in a small TOML file (`policy.users_file`, R-S16, R-S18, R-X10)
 * that the admin tools write (`poplar quota set`, `poplar retention set`):
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
import { editFile } from '../storage/admin-file.js';
import { ConfigError } from '../errors.js';
import { applyChanges, overrideSchema, type OverrideKey, type OverrideStore, type OverrideVariety, type UserOverrides } from './overrides.js';

/**
 * How long one stat(2) of the file answers for it. Every delivery (twice: RCPT and DATA) and
 * every login asks, and while the file does not exist each stat costs an ENOENT exception; a
 * change by another process (`poplar quota set`) is seen at most this much later.
 */
const RESTAT_MS = 100;

export class PolicyFile implements OverrideStore {
  private cache: { mtimeMs: number; size: number; users: Map<string, UserOverrides> } | undefined;
  /** The last load and when it stat'ed the file (RESTAT_MS). */
  private recent: { at: number; users: Map<string, UserOverrides> } | undefined;

  constructor(readonly path: string) {}

  get where(): string {
    return this.path;
  }

  /**
   * Sets (a number) or removes (null) override keys of one user: the file is read fresh and
   * rewritten under its lock, atomically, keeping its owner and mode (storage/admin-file.ts).
   */
  async update(user: string, changes: Partial<Record<OverrideKey, number | null>>): Promise<UserOverrides> {
    const checked = await editFile(this.path, (text) => {
      const users = text === undefined ? new Map<string, UserOverrides>() : this.parse(text);
      const result = applyChanges(users.get(user), changes);
      if (Object.keys(result).length === 0) users.delete(user);
      else users.set(user, result);
      const toml = stringify(Object.fromEntries([...users].sort(([a], [b]) => (a < b ? -1 : 1))));
      return { text: `# poplar per-user policy; written by poplar quota/retention set\n${toml}\n`, result };
    });
    this.cache = undefined;
    this.recent = undefined;
    return checked;
  }

  async get(user: string): Promise<UserOverrides | undefined> {
    return (await this.load()).get(user);
  }

  async varies(): Promise<OverrideVariety> {
    const users = [...(await this.load()).values()];
    return {
      expire: users.some((u) => u.retrieved_days !== undefined || u.unretrieved_days !== undefined),
      loginDelay: users.some((u) => u.login_delay !== undefined),
    };
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

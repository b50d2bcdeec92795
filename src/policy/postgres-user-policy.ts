/**
 * The per-user policy overrides in PostgreSQL (R-X17 with R-S16, R-S18, R-X10): the table
 * `user_policy` (migrations/100-directory.sql), one row per user with an override, a column per
 * override key, NULL for the configuration's default. With `auth.directory = "postgres"` every
 * node reads the same overrides and `poplar quota set` / `poplar retention set` write them.
 *
 * Read as the policy file is: the whole table, at most once per RELOAD_MS (every delivery and
 * login asks; overrides are few, set by an administrator), so a change is seen by every node at
 * most that much later (R-S20). A change is one transaction that locks the user's row, so two
 * `quota set` racing each other both land, as under the file's lock. A query that fails (the
 * database down or timing out) rejects with UnavailableError: the login gets `-ERR [SYS/TEMP]`,
 * a delivery a temporary failure, a command one line.
 */
import type { Sql } from 'postgres';
import { ZodError } from 'zod';
import { UnavailableError } from '../errors.js';
import { applyChanges, OVERRIDE_KEYS, type OverrideKey, type OverrideStore, type UserOverrides } from './overrides.js';

/** How long one read of the table answers for it, ms. */
const RELOAD_MS = 100;

type Row = { name: string } & Record<OverrideKey, number | null>;

function overridesOf(row: Partial<Record<OverrideKey, number | null>>): UserOverrides {
  const o: Record<string, number> = {};
  for (const key of OVERRIDE_KEYS) {
    const v = row[key];
    if (v !== null && v !== undefined) o[key] = Number(v);
  }
  return o as UserOverrides;
}

export class PostgresOverrides implements OverrideStore {
  readonly where = 'PostgreSQL';
  private recent: { at: number; users: Map<string, UserOverrides> } | undefined;
  private pending: Promise<Map<string, UserOverrides>> | undefined;

  constructor(private readonly sql: Sql) {}

  async load(): Promise<Map<string, UserOverrides>> {
    if (this.recent !== undefined && performance.now() - this.recent.at < RELOAD_MS) return this.recent.users;
    this.pending ??= this.read().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async read(): Promise<Map<string, UserOverrides>> {
    const at = performance.now();
    let rows: Row[];
    try {
      rows = await this.sql<Row[]>`SELECT * FROM user_policy`;
    } catch (err) {
      throw new UnavailableError('the user policy (PostgreSQL)', err);
    }
    const users = new Map(rows.map((r) => [r.name, overridesOf(r)]));
    this.recent = { at, users };
    return users;
  }

  async update(user: string, changes: Partial<Record<OverrideKey, number | null>>): Promise<UserOverrides> {
    let result: UserOverrides;
    try {
      result = await this.sql.begin(async (tx) => {
        await tx`INSERT INTO user_policy (name) VALUES (${user}) ON CONFLICT (name) DO NOTHING`;
        const [row] = await tx<Row[]>`SELECT * FROM user_policy WHERE name = ${user} FOR UPDATE`;
        const next = applyChanges(overridesOf(row ?? {}), changes);
        if (Object.keys(next).length === 0) {
          await tx`DELETE FROM user_policy WHERE name = ${user}`;
        } else {
          const values = Object.fromEntries(OVERRIDE_KEYS.map((k) => [k, next[k] ?? null]));
          await tx`UPDATE user_policy SET ${tx(values, ...OVERRIDE_KEYS)} WHERE name = ${user}`;
        }
        return next;
      });
    } catch (err) {
      if (err instanceof ZodError) throw err;
      throw new UnavailableError('the user policy (PostgreSQL)', err);
    } finally {
      this.recent = undefined;
    }
    return result;
  }
}

/**
 * The per-user policy overrides in PostgreSQL (R-X17 with R-S16, R-S18, R-X10): the table
 * `user_policy` (migrations/100-directory.sql), one row per user with an override, a column per
 * override key, NULL for the configuration's default. With `auth.directory = "postgres"` every
 * node reads the same overrides and `poplar quota set` / `poplar retention set` write them.
 *
 * Read per user (one indexed row), each answer kept for RELOAD_MS for up to MAX_CACHED users
 * (every delivery, login and RETR asks), so a change is seen by every node at most that much later
 * (R-S20) and the table's size costs nothing per read; the pre-login CAPA asks two EXISTS, kept
 * as long. A change is one transaction that locks the user's row, so two
 * `quota set` racing each other both land, as under the file's lock. A query that fails (the
 * database down or timing out) rejects with UnavailableError: the login gets `-ERR [SYS/TEMP]`,
 * a delivery a temporary failure, a command one line.
 */
import type { Sql } from 'postgres';
import { ZodError } from 'zod';
import { UnavailableError } from '../errors.js';
import { applyChanges, OVERRIDE_KEYS, type OverrideKey, type OverrideStore, type OverrideVariety, type UserOverrides } from './overrides.js';

/** How long one read answers for a user (or for the variety), ms. */
const RELOAD_MS = 100;
/** Users whose last read is kept; the least recently read go first. */
const MAX_CACHED = 10_000;

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
  /** By user; Map order is the order read (the first key is the oldest read). */
  private readonly recent = new Map<string, { at: number; value: Promise<UserOverrides | undefined> }>();
  private variety: { at: number; value: Promise<OverrideVariety> } | undefined;

  constructor(private readonly sql: Sql) {}

  get(user: string): Promise<UserOverrides | undefined> {
    const now = performance.now();
    const kept = this.recent.get(user);
    if (kept !== undefined && now - kept.at < RELOAD_MS) return kept.value;
    const value = this.read(user);
    this.recent.delete(user);
    this.recent.set(user, { at: now, value });
    for (const oldest of this.recent.keys()) {
      if (this.recent.size <= MAX_CACHED) break;
      this.recent.delete(oldest);
    }
    // A failed read is not kept: the next one asks the database again.
    value.catch(() => {
      if (this.recent.get(user)?.value === value) this.recent.delete(user);
    });
    return value;
  }

  private async read(user: string): Promise<UserOverrides | undefined> {
    try {
      const [row] = await this.sql<Row[]>`SELECT * FROM user_policy WHERE name = ${user}`;
      return row === undefined ? undefined : overridesOf(row);
    } catch (err) {
      throw new UnavailableError('the user policy (PostgreSQL)', err);
    }
  }

  varies(): Promise<OverrideVariety> {
    const now = performance.now();
    if (this.variety !== undefined && now - this.variety.at < RELOAD_MS) return this.variety.value;
    const value = this.sql<OverrideVariety[]>`
      SELECT EXISTS (SELECT 1 FROM user_policy WHERE retrieved_days IS NOT NULL OR unretrieved_days IS NOT NULL) AS expire,
             EXISTS (SELECT 1 FROM user_policy WHERE login_delay IS NOT NULL) AS "loginDelay"`
      .then(([r]) => ({ expire: r?.expire === true, loginDelay: r?.loginDelay === true }), (err: unknown) => {
        this.variety = undefined;
        throw new UnavailableError('the user policy (PostgreSQL)', err);
      });
    this.variety = { at: now, value };
    return value;
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
      this.recent.delete(user);
      this.variety = undefined;
    }
    return result;
  }
}

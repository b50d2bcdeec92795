/**
 * Versioned schema migrations (issue 15): numbered SQL files in ./migrations/ (`001-mail.sql`;
 * the directory's tables start at 100), applied in order by `poplar db migrate`, each in its own
 * transaction together with its row in `schema_migrations`. Every transaction first takes a
 * transaction-level advisory lock, so two nodes migrating at once apply each file once: the
 * second waits, then finds the version recorded and skips it. `checkSchema` runs when a node
 * starts: it refuses a database that lacks a version this poplar needs (not migrated) or has one
 * it does not know (migrated by a newer poplar), with a one-line reason.
 */
import { readdir, readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import type { Sql } from './client.js';

/** Where the SQL files are, beside this module (the build copies them: scripts/copy-sql.mjs). */
export const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url);

/** Arbitrary constant key of the advisory lock ("popl"). */
const LOCK_KEY = 0x706f706c;

export interface Migration {
  readonly version: number;
  /** The file name without its number and `.sql`. */
  readonly name: string;
  readonly sql: string;
}

/** The schema is not what this poplar can run on; the message is the one-line reason. */
export class SchemaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchemaError';
  }
}

const FILE = /^(\d{3})-([a-z0-9][a-z0-9-]*)\.sql$/;

/** The migrations in `dir`, ascending version; two files with one number are refused. */
export async function loadMigrations(from: URL | string = MIGRATIONS_DIR): Promise<Migration[]> {
  const dir = from instanceof URL ? from : pathToFileURL(from.endsWith('/') ? from : `${from}/`);
  const files = (await readdir(dir)).filter((f) => FILE.test(f)).sort();
  const out: Migration[] = [];
  for (const file of files) {
    const [, num, name] = FILE.exec(file)!;
    const version = Number(num);
    if (out.some((m) => m.version === version)) throw new SchemaError(`two migrations numbered ${num} in ${String(dir)}`);
    out.push({ version, name: name!, sql: await readFile(new URL(file, dir), 'utf8') });
  }
  return out;
}

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version    integer PRIMARY KEY,
  name       text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;

/** The versions recorded in the database, ascending; empty when it was never migrated. */
export async function appliedVersions(sql: Sql): Promise<number[]> {
  const [exists] = await sql<{ t: string | null }[]>`SELECT to_regclass('schema_migrations')::text AS t`;
  if (exists?.t == null) return [];
  const rows = await sql<{ version: number }[]>`SELECT version FROM schema_migrations ORDER BY version`;
  return rows.map((r) => r.version);
}

function unknownProblem(applied: readonly number[], known: readonly Migration[]): string | undefined {
  const unknown = applied.filter((v) => !known.some((m) => m.version === v));
  if (unknown.length === 0) return undefined;
  const newest = known.length === 0 ? 0 : known[known.length - 1]!.version;
  return `the database schema has version ${unknown.join(', ')}, which this poplar does not know (it knows up to ${newest}): run a poplar at least as new as the one that migrated it`;
}

export interface MigrateResult {
  /** Versions this run applied (empty: the schema was up to date). */
  readonly applied: readonly number[];
  /** The highest version now recorded. */
  readonly current: number;
}

/** Applies every migration not yet recorded; safe to run from several nodes at once. */
export async function migrate(sql: Sql, migrations?: readonly Migration[]): Promise<MigrateResult> {
  const known = migrations ?? (await loadMigrations());
  const applied: number[] = [];
  for (const m of known) {
    const done = await sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${LOCK_KEY})`;
      await tx.unsafe(CREATE_TABLE);
      const recorded = (await tx<{ version: number }[]>`SELECT version FROM schema_migrations`).map((r) => r.version);
      const problem = unknownProblem(recorded, known);
      if (problem !== undefined) throw new SchemaError(problem);
      if (recorded.includes(m.version)) return false;
      await tx.unsafe(m.sql).simple();
      await tx`INSERT INTO schema_migrations (version, name) VALUES (${m.version}, ${m.name})`;
      return true;
    });
    if (done) applied.push(m.version);
  }
  const versions = await appliedVersions(sql);
  return { applied, current: versions.length === 0 ? 0 : versions[versions.length - 1]! };
}

/**
 * At start: resolves when every known migration is recorded and nothing else is; otherwise
 * rejects with a SchemaError naming what to do.
 */
export async function checkSchema(sql: Sql, migrations?: readonly Migration[]): Promise<void> {
  const known = migrations ?? (await loadMigrations());
  const applied = await appliedVersions(sql);
  const problem = unknownProblem(applied, known);
  if (problem !== undefined) throw new SchemaError(problem);
  const missing = known.filter((m) => !applied.includes(m.version)).map((m) => m.version);
  if (applied.length === 0) throw new SchemaError('the database is not migrated: run "poplar db migrate"');
  if (missing.length > 0) throw new SchemaError(`the database schema lacks version ${missing.join(', ')}: run "poplar db migrate"`);
}

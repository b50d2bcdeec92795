/**
 * `poplar db migrate` (issue 15): applies the PostgreSQL schema migrations not yet applied
 * (storage/postgres/migrate.ts) to the database of `postgres.url`. Safe to run on several nodes at
 * once (an advisory lock), and again (it applies nothing then). `poplar db status` prints the
 * versions the database has and the ones this poplar knows.
 */
import { Command } from 'commander';
import { CliError, configFrom, withConfigOptions, type ConfigOptions } from './common.js';

async function withDatabase<T>(opts: ConfigOptions, run: (sql: import('../storage/postgres/client.js').Sql) => Promise<T>): Promise<T> {
  const config = configFrom(opts);
  if (config.postgres.url === '') throw new CliError('postgres.url is not set: name the database in [postgres] url = "postgres://…"');
  const { postgresOptions } = await import('./compose.js');
  const { connectPostgres, redactUrl } = await import('../storage/postgres/client.js');
  const { SchemaError } = await import('../storage/postgres/migrate.js');
  const sql = connectPostgres({ ...postgresOptions(config), poolSize: 2 });
  try {
    return await run(sql);
  } catch (err) {
    if (err instanceof SchemaError) throw new CliError(err.message);
    throw new CliError(`database ${redactUrl(config.postgres.url)}: ${(err as Error).message}`);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function migrateDb(opts: ConfigOptions): Promise<void> {
  const { migrate } = await import('../storage/postgres/migrate.js');
  const result = await withDatabase(opts, (sql) => migrate(sql));
  if (result.applied.length === 0) process.stdout.write(`schema up to date at version ${result.current}\n`);
  else process.stdout.write(`applied version ${result.applied.join(', ')}; schema at version ${result.current}\n`);
}

async function status(opts: ConfigOptions): Promise<void> {
  const { appliedVersions, loadMigrations } = await import('../storage/postgres/migrate.js');
  const known = await loadMigrations();
  const applied = await withDatabase(opts, (sql) => appliedVersions(sql));
  process.stdout.write(`database has: ${applied.length === 0 ? 'none' : applied.join(', ')}\n`);
  process.stdout.write(`poplar knows: ${known.map((m) => `${m.version} (${m.name})`).join(', ')}\n`);
}

export function dbCommand(): Command {
  const db = new Command('db').description('the PostgreSQL database (storage.backend = "postgres")');
  db.addCommand(
    withConfigOptions(new Command('migrate').description('apply the schema migrations this poplar has and the database lacks'))
      .action((opts: ConfigOptions) => migrateDb(opts)),
  );
  db.addCommand(
    withConfigOptions(new Command('status').description('show the schema versions of the database and of this poplar'))
      .action((opts: ConfigOptions) => status(opts)),
  );
  return db;
}

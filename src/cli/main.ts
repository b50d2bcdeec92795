#!/usr/bin/env node
/**
 * The `poplar` command: a table of subcommands, one file each. Expected failures (CliError,
 * ConfigError, DirectoryError (a change the directory refuses), DirectoryUnavailableError and
 * UnavailableError (LDAP or PostgreSQL cannot answer)) print `poplar: <message>` to stderr and exit 1, without a stack.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { DirectoryError } from '../auth/directory.js';
import { ConfigError, DirectoryUnavailableError, UnavailableError } from '../errors.js';
import { CliError, ExitStatus } from './common.js';
import { adminCommand } from './admin.js';
import { certCommand } from './cert.js';
import { configCommand } from './config.js';
import { dbCommand } from './db.js';
import { deliverCommand } from './deliver.js';
import { expireCommand } from './expire.js';
import { exportCommand } from './export.js';
import { importCommand } from './import.js';
import { quotaCommand } from './quota.js';
import { retentionCommand } from './retention.js';
import { grantCommand } from './grant.js';
import { reloadCommand } from './reload.js';
import { serveCommand } from './serve-command.js';
import { userCommand } from './user.js';

const SUBCOMMANDS: ReadonlyArray<() => Command> = [
  serveCommand, userCommand, grantCommand, configCommand, deliverCommand, quotaCommand, retentionCommand,
  expireCommand, importCommand, exportCommand, certCommand, reloadCommand, adminCommand, dbCommand,
];

/** The package's version: package.json is two levels up in the package (lib/cli/), three in a build (dist/src/cli/). */
function version(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    let pkg: { name?: unknown; version?: unknown };
    try {
      pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as typeof pkg;
    } catch {
      continue;
    }
    if (pkg.name === 'poplar' && typeof pkg.version === 'string') return pkg.version;
  }
  return 'unknown';
}

/** Usage errors read `poplar: <message>` and reach main() instead of exiting, at every level. */
function configure(cmd: Command): void {
  cmd
    .configureOutput({ outputError: (str, write) => write(`poplar: ${str.replace(/^error: /, '')}`) })
    .exitOverride();
  for (const sub of cmd.commands) configure(sub);
}

export function program(): Command {
  const p = new Command('poplar').description('poplar, a POP3 server').version(version());
  for (const make of SUBCOMMANDS) p.addCommand(make());
  configure(p);
  return p;
}

/** Runs the CLI; resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    await program().parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof ExitStatus) {
      if (err.message !== '') process.stderr.write(`poplar: ${err.message}\n`);
      return err.status;
    }
    if (err instanceof CliError || err instanceof DirectoryError || err instanceof ConfigError || err instanceof UnavailableError ||
      err instanceof DirectoryUnavailableError) {
      process.stderr.write(`poplar: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`poplar: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(realpathSync(entry)).href) {
  process.exitCode = await main(process.argv.slice(2));
}

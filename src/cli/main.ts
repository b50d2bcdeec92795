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

/**
 * Each subcommand's module by the subcommand's name, imported on use: `poplar user list` loads the
 * `user` module only, so a process pays for what it runs (Node start-up is most of a CLI call's
 * cost). Help, a version request and a name that is no subcommand load them all, in this order.
 */
const SUBCOMMANDS: Readonly<Record<string, () => Promise<() => Command>>> = {
  serve: async () => (await import('./serve-command.js')).serveCommand,
  user: async () => (await import('./user.js')).userCommand,
  grant: async () => (await import('./grant.js')).grantCommand,
  config: async () => (await import('./config.js')).configCommand,
  deliver: async () => (await import('./deliver.js')).deliverCommand,
  quota: async () => (await import('./quota.js')).quotaCommand,
  retention: async () => (await import('./retention.js')).retentionCommand,
  expire: async () => (await import('./expire.js')).expireCommand,
  import: async () => (await import('./import.js')).importCommand,
  export: async () => (await import('./export.js')).exportCommand,
  cert: async () => (await import('./cert.js')).certCommand,
  reload: async () => (await import('./reload.js')).reloadCommand,
  admin: async () => (await import('./admin.js')).adminCommand,
  db: async () => (await import('./db.js')).dbCommand,
};

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

/** The command for `argv`: with every subcommand, or only the one `argv` names first. */
export async function program(argv: readonly string[] = []): Promise<Command> {
  const p = new Command('poplar').description('poplar, a POP3 server').version(version());
  const first = argv[0];
  const names = first !== undefined && Object.hasOwn(SUBCOMMANDS, first) ? [first] : Object.keys(SUBCOMMANDS);
  const makers = await Promise.all(names.map((name) => SUBCOMMANDS[name]!()));
  for (const make of makers) p.addCommand(make());
  configure(p);
  return p;
}

/** Runs the CLI; resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    await (await program(argv)).parseAsync([...argv], { from: 'user' });
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

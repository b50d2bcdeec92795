/**
 * What the subcommands share: the `--config`, `-o`, `--data` options that locate the
 * configuration, and CliError, an expected failure printed as `poplar: <message>` without a stack.
 */
import type { Command } from 'commander';
import { printableName, userNameProblem } from '../user-name.js';
import { loadConfig, type Config } from '../config/load.js';

export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

/**
 * A subcommand's chosen exit status with a message for stderr, e.g. `poplar deliver`'s sysexits
 * codes (67 no such user, 75 temporary failure) that Postfix and procmail act on.
 */
export class ExitStatus extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ExitStatus';
  }
}

/** Refuses a name that breaks the one name rule (user-name.ts) with a one-line CliError. */
export function checkUserName(name: string, what = 'user name'): void {
  const problem = userNameProblem(name);
  if (problem !== undefined) throw new CliError(`invalid ${what} ${printableName(name)}: ${problem}`);
}

export interface ConfigOptions {
  config?: string;
  override: string[];
  data?: string;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Adds the options every subcommand uses to find its configuration. */
export function withConfigOptions(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'TOML config file')
    .option('-o, --override <key=value>', 'set a config key, e.g. -o pop3.listen=127.0.0.1:1110 (repeatable)', collect, [])
    .option('--data <dir>', 'data directory (sets server.data_dir)');
}

export function configFrom(opts: ConfigOptions): Config {
  return loadConfig({
    ...(opts.config === undefined ? {} : { file: opts.config }),
    ...(opts.data === undefined ? {} : { dataDir: opts.data }),
    overrides: opts.override,
  });
}

/**
 * `poplar config check` (every problem, exit 1; or "configuration OK") and `poplar config show`
 * (the effective configuration as TOML, defaults and overrides applied, paths resolved).
 */
import { Command } from 'commander';
import { stringify } from 'smol-toml';
import { configFrom, withConfigOptions, type ConfigOptions } from './common.js';

export function configCommand(): Command {
  const config = new Command('config').description('check or show the configuration');
  withConfigOptions(config.command('check').description('validate the configuration, listing every problem'))
    .action((opts: ConfigOptions) => {
      configFrom(opts);
      process.stdout.write('configuration OK\n');
    });
  withConfigOptions(config.command('show').description('print the effective configuration as TOML'))
    .action((opts: ConfigOptions) => {
      process.stdout.write(stringify(configFrom(opts)).trimEnd() + '\n');
    });
  return config;
}

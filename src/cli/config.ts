/**
 * `poplar config check` (every problem, exit 1; or "configuration OK") and `poplar config show`
 * (the effective configuration as TOML, defaults and overrides applied, paths resolved, secrets
 * such as `ldap.bind_password` shown as `(secret)`).
 */
import { Command } from 'commander';
import { stringify } from 'smol-toml';
import { configKeys } from '../config/keys.js';
import type { Config } from '../config/load.js';
import { configFrom, withConfigOptions, type ConfigOptions } from './common.js';

/** The configuration with every secret key that has a value masked (schema-meta.ts `secret`). */
function masked(config: Config): Config {
  const copy = structuredClone(config) as unknown as Record<string, Record<string, unknown>>;
  for (const info of configKeys().values()) {
    if (info.secret && copy[info.section]?.[info.key] !== '') copy[info.section]![info.key] = '(secret)';
  }
  return copy as unknown as Config;
}

export function configCommand(): Command {
  const config = new Command('config').description('check or show the configuration');
  withConfigOptions(config.command('check').description('validate the configuration, listing every problem'))
    .action((opts: ConfigOptions) => {
      configFrom(opts);
      process.stdout.write('configuration OK\n');
    });
  withConfigOptions(config.command('show').description('print the effective configuration as TOML'))
    .action((opts: ConfigOptions) => {
      process.stdout.write(stringify(masked(configFrom(opts))).trimEnd() + '\n');
    });
  return config;
}

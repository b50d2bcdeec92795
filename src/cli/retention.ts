/**
 * `poplar retention set|get` (R-S18, R-X10): per-user maximum ages of retrieved and never
 * retrieved mail, and the LOGIN-DELAY a user is asked to keep, in `policy.users_file`.
 */
import { Command } from 'commander';
import type { OverrideKey } from '../policy/overrides.js';
import { expireValue } from '../policy/user-policy.js';
import { AdminFileError } from '../storage/admin-file.js';
import { checkUserName, CliError, configFrom, withConfigOptions, type ConfigOptions } from './common.js';

interface SetOptions extends ConfigOptions {
  retrievedDays?: string;
  unretrievedDays?: string;
  loginDelay?: string;
}

function value(text: string, what: string): number | null {
  if (text === 'default') return null;
  if (!/^\d{1,9}$/.test(text)) throw new CliError(`invalid ${what} "${text}" (a whole number, 0 for none, or "default")`);
  return Number(text);
}

async function get(name: string, opts: ConfigOptions): Promise<void> {
  checkUserName(name);
  const { createPolicies } = await import('./compose.js');
  const p = await createPolicies(configFrom(opts)).get(name);
  const days = (d: number): string => (d === 0 ? 'kept' : `${d} days`);
  process.stdout.write(
    `${name}\tretrieved ${days(p.retrievedDays)}\tunretrieved ${days(p.unretrievedDays)}` +
      `\tCAPA EXPIRE ${expireValue(p)}\tLOGIN-DELAY ${p.loginDelay === 0 ? 'none' : p.loginDelay}\n`,
  );
}

async function set(name: string, opts: SetOptions): Promise<void> {
  const changes: Partial<Record<OverrideKey, number | null>> = {};
  if (opts.retrievedDays !== undefined) changes.retrieved_days = value(opts.retrievedDays, 'day count');
  if (opts.unretrievedDays !== undefined) changes.unretrieved_days = value(opts.unretrievedDays, 'day count');
  if (opts.loginDelay !== undefined) changes.login_delay = value(opts.loginDelay, 'delay');
  if (Object.keys(changes).length === 0) throw new CliError('give --retrieved-days, --unretrieved-days and/or --login-delay');
  checkUserName(name);
  const config = configFrom(opts);
  const { createPolicies, withDirectory } = await import('./compose.js');
  if ((await withDirectory(config, (d) => d.lookup(name))) === undefined) throw new CliError(`no such user "${name}"`);
  await createPolicies(config).update(name, changes).catch((err: unknown) => {
    throw err instanceof AdminFileError ? new CliError(err.message) : err;
  });
  await get(name, opts);
}

export function retentionCommand(): Command {
  const retention = new Command('retention').description('set and show per-user retention and login delay');
  withConfigOptions(
    retention
      .command('set')
      .description('override retention of a user ("default" drops the override, 0 keeps mail forever)')
      .argument('<user>')
      .option('--retrieved-days <n>', 'remove retrieved messages this many days after arrival')
      .option('--unretrieved-days <n>', 'remove never-retrieved messages this many days after arrival')
      .option('--login-delay <seconds>', 'CAPA LOGIN-DELAY advertised to this user'),
  ).action((name: string, opts: SetOptions) => set(name, opts));
  withConfigOptions(retention.command('get').description("show a user's retention").argument('<user>')).action(get);
  return retention;
}

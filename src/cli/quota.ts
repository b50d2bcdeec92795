/**
 * `poplar quota set|get|list` (R-S16, R-S20, R-X10): per-user storage quota and daily download
 * limit overrides in `policy.users_file`, and what each maildrop uses. A running server applies a
 * change to the next delivery, RETR or TOP.
 */
import { Command } from 'commander';
import type { Config } from '../config/schema.js';
import { AdminFileError } from '../storage/admin-file.js';
import { fullness, parseSize } from '../policy/quota.js';
import { checkUserName, CliError, configFrom, withConfigOptions, type ConfigOptions } from './common.js';

interface SetOptions extends ConfigOptions {
  bytes?: string;
  messages?: string;
  downloadPerDay?: string;
}

const limit = (n: number): string => (n === 0 ? 'unlimited' : String(n));

/** A value for `set`: a number (sizes may say K, M, G), or `default` to drop the override. */
function parseValue(text: string, what: string, size: boolean): number | null {
  if (text === 'default') return null;
  const n = size ? parseSize(text) : /^\d{1,15}$/.test(text) ? Number(text) : undefined;
  if (n === undefined) throw new CliError(`invalid ${what} "${text}" (a number${size ? ' with optional K, M, G' : ''}, 0 for unlimited, or "default")`);
  return n;
}

async function show(config: Config, names: readonly string[]): Promise<void> {
  const { createPolicies, createStore } = await import('./compose.js');
  const policies = createPolicies(config);
  const store = createStore(config);
  for (const name of names) {
    const p = await policies.get(name);
    const u = await store.usage(name);
    const pct = fullness(u, p);
    process.stdout.write(
      `${name}\tbytes ${u.bytes}/${limit(p.quotaBytes)}\tmessages ${u.messages}/${limit(p.quotaMessages)}` +
        `${p.quotaBytes > 0 || p.quotaMessages > 0 ? `\t${pct.toFixed(1)}%` : ''}` +
        `${p.downloadBytesPerDay > 0 ? `\tdownload ${p.downloadBytesPerDay}/day` : ''}\n`,
    );
  }
  await store.close();
}

async function set(name: string, opts: SetOptions): Promise<void> {
  if (opts.bytes === undefined && opts.messages === undefined && opts.downloadPerDay === undefined) {
    throw new CliError('give --bytes, --messages and/or --download-per-day');
  }
  checkUserName(name);
  const config = configFrom(opts);
  const { createPolicies, withDirectory } = await import('./compose.js');
  if ((await withDirectory(config, (d) => d.lookup(name))) === undefined) throw new CliError(`no such user "${name}"`);
  const changes: { quota_bytes?: number | null; quota_messages?: number | null; download_bytes_per_day?: number | null } = {};
  if (opts.bytes !== undefined) changes.quota_bytes = parseValue(opts.bytes, 'size', true);
  if (opts.messages !== undefined) changes.quota_messages = parseValue(opts.messages, 'message count', false);
  if (opts.downloadPerDay !== undefined) changes.download_bytes_per_day = parseValue(opts.downloadPerDay, 'size', true);
  await createPolicies(config).update(name, changes).catch((err: unknown) => {
    throw err instanceof AdminFileError ? new CliError(err.message) : err;
  });
  await show(config, [name]);
}

export function quotaCommand(): Command {
  const quota = new Command('quota').description('set and show per-user storage quotas');
  withConfigOptions(
    quota
      .command('set')
      .description('override the quota of a user ("default" drops the override, 0 is unlimited)')
      .argument('<user>')
      .option('--bytes <size>', 'storage quota in octets, e.g. 50M')
      .option('--messages <count>', 'quota on the number of messages')
      .option('--download-per-day <size>', 'octets RETR/TOP may send per UTC day, e.g. 500M (R-X10)'),
  ).action((name: string, opts: SetOptions) => set(name, opts));
  withConfigOptions(quota.command('get').description("show a user's quota and usage").argument('<user>')).action(
    (name: string, opts: ConfigOptions) => {
      checkUserName(name);
      return show(configFrom(opts), [name]);
    },
  );
  withConfigOptions(quota.command('list').description('show quota and usage of every user')).action(async (opts: ConfigOptions) => {
    const config = configFrom(opts);
    const users = await (await import('./compose.js')).withDirectory(config, (d) => d.list());
    await show(config, users.map((u) => u.name));
  });
  return quota;
}

/**
 * `poplar expire [--dry-run] [--user NAME]` (R-S18): one retention sweep now, beside a running
 * server or not. A maildrop a POP3 session has open (in this or the server process) is skipped
 * and left for a later sweep. Prints one line per maildrop it acted on; the JSON log (stderr)
 * records every removed uid.
 */
import { Command } from 'commander';
import { createLogger } from '../observability/logger.js';
import { configFrom, withConfigOptions, type ConfigOptions } from './common.js';

interface ExpireOptions extends ConfigOptions {
  dryRun?: boolean;
  user?: string;
}

async function expire(opts: ExpireOptions): Promise<void> {
  const config = configFrom(opts);
  const { openDirectory, createStore, createSweeper } = await import('./compose.js');
  const logger = createLogger(config.log.level, process.stderr);
  const directory = await openDirectory(config);
  const store = createStore(config);
  const sweeper = createSweeper(config, store, directory, logger);
  const results = await sweeper.sweep({
    dryRun: opts.dryRun === true,
    ...(opts.user === undefined ? {} : { only: [opts.user] }),
  }).finally(() => directory.close?.());
  for (const r of results) {
    if (r.inUse) process.stdout.write(`${r.mailbox}: in use by a POP3 session, skipped\n`);
    else if (r.removed.length > 0) {
      const bytes = r.removed.reduce((n, m) => n + m.size, 0);
      const verb = opts.dryRun === true ? 'would remove' : 'removed';
      process.stdout.write(`${r.mailbox}: ${verb} ${r.removed.length} message(s), ${bytes} octets, uids ${r.removed.map((m) => m.uid).join(',')}\n`);
    }
  }
  const total = results.reduce((n, r) => n + r.removed.length, 0);
  process.stdout.write(`${opts.dryRun === true ? 'would remove' : 'removed'} ${total} message(s) in ${results.length} maildrop(s) with a retention policy\n`);
  await store.close();
}

export function expireCommand(): Command {
  return withConfigOptions(
    new Command('expire')
      .description('remove mail older than the retention policy now (skips maildrops in use)')
      .option('-n, --dry-run', 'only show what would be removed')
      .option('-u, --user <name>', 'only this maildrop'),
  ).action((opts: ExpireOptions) => expire(opts));
}

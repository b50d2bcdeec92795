/**
 * `poplar export --user NAME --format mbox|maildir PATH` (R-X15, R-X11): writes a copy of a
 * maildrop, with its UIDLs (a dovecot-uidlist for Maildir, X-UIDL headers for mbox). PATH must
 * not exist yet. Progress as for import.
 */
import { Command, Option } from 'commander';
import { exportMail } from '../migrate/export.js';
import { MigrateError, type MailFormat } from '../migrate/import.js';
import { CliError, configFrom, withConfigOptions, type ConfigOptions } from './common.js';

interface ExportOptions extends ConfigOptions {
  user: string;
  format: MailFormat;
}

async function runExport(path: string, opts: ExportOptions): Promise<void> {
  const config = configFrom(opts);
  const { createStore } = await import('./compose.js');
  const store = createStore(config);
  try {
    if (!(await store.exists(opts.user))) throw new CliError(`no maildrop "${opts.user}"`);
    const r = await exportMail(store, opts.user, path, opts.format).catch((err: unknown) => {
      throw err instanceof MigrateError ? new CliError(err.message) : err;
    });
    process.stdout.write(`exported ${r.exported} message(s), ${r.bytes} octets, from "${opts.user}" to ${path} (${opts.format})\n`);
  } finally {
    await store.close();
  }
}

export function exportCommand(): Command {
  return withConfigOptions(
    new Command('export')
      .description("write a copy of a user's maildrop as an mbox file or a Maildir, with its UIDLs")
      .argument('<path>', 'mbox file to create, or Maildir directory')
      .requiredOption('-u, --user <name>', 'whose maildrop to export')
      .addOption(new Option('--format <format>', 'output format').choices(['mbox', 'maildir']).makeOptionMandatory()),
  ).action((path: string, opts: ExportOptions) => runExport(path, opts));
}

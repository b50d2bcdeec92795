/**
 * `poplar import --user NAME PATH [--format mbox|maildir]` (R-X15, R-X11): adds the messages of an
 * mbox file or a Maildir to a user's maildrop, keeping the UIDLs clients already know. A progress
 * bar is drawn on a terminal; otherwise plain progress lines go to stderr.
 */
import { Command, Option } from 'commander';
import { createLogger } from '../observability/logger.js';
import { detectFormat, importMail, MigrateError, type MailFormat } from '../migrate/import.js';
import { CliError, configFrom, withConfigOptions, type ConfigOptions } from './common.js';

interface ImportOptions extends ConfigOptions {
  user: string;
  format?: MailFormat;
}

async function runImport(path: string, opts: ImportOptions): Promise<void> {
  const config = configFrom(opts);
  const { createStore, withDirectory } = await import('./compose.js');
  if ((await withDirectory(config, (d) => d.lookup(opts.user))) === undefined) throw new CliError(`no such user "${opts.user}"`);
  const expected = (err: unknown): never => {
    throw err instanceof MigrateError ? new CliError(err.message) : err;
  };
  const format = opts.format ?? (await detectFormat(path).catch(expected));
  const store = createStore(config);
  const logger = createLogger(config.log.level, process.stderr);
  try {
    const r = await importMail(store, opts.user, path, format, logger).catch(expected);
    process.stdout.write(
      `imported ${r.imported} message(s), ${r.bytes} octets, into "${opts.user}"; ` +
        `${r.carried} kept their UIDL, ${r.dropped} got a new one\n`,
    );
  } finally {
    await store.close();
  }
}

export function importCommand(): Command {
  return withConfigOptions(
    new Command('import')
      .description("import an mbox file or a Maildir into a user's maildrop, keeping UIDLs (Dovecot uidlist, X-UIDL)")
      .argument('<path>', 'mbox file or Maildir directory')
      .requiredOption('-u, --user <name>', 'the user whose maildrop receives the messages')
      .addOption(new Option('--format <format>', 'source format (default: detected)').choices(['mbox', 'maildir'])),
  ).action((path: string, opts: ImportOptions) => runImport(path, opts));
}

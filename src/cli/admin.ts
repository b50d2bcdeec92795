/**
 * `poplar admin token [--revoke ID] [--list]` (R-X21): bearer tokens of the admin API and console.
 * A new token is printed once, on stdout; the file (`admin.tokens_file`) keeps only its SHA-256
 * (admin/tokens.ts). A running server sees a new or revoked token at its next request.
 */
import { Command } from 'commander';
import { CliError, configFrom, withConfigOptions, type ConfigOptions } from './common.js';

interface TokenOptions extends ConfigOptions {
  revoke?: string;
  list?: boolean;
}

async function token(opts: TokenOptions): Promise<void> {
  const config = configFrom(opts);
  const { AdminTokens, AdminTokenError } = await import('../admin/tokens.js');
  const tokens = new AdminTokens(config.admin.tokens_file);
  try {
    if (opts.list === true) {
      const all = await tokens.list();
      if (all.length === 0) process.stderr.write(`no admin tokens in ${tokens.path}\n`);
      for (const t of all) process.stdout.write(`${t.id}\tcreated ${t.created}\n`);
    } else if (opts.revoke !== undefined) {
      const id = await tokens.revoke(opts.revoke);
      process.stdout.write(`admin token ${id} revoked\n`);
    } else {
      const made = await tokens.create();
      process.stdout.write(`${made.token}\n`);
      const where = config.admin.listen === '' ? '' : ` Console: ${config.admin.tls_cert === '' ? 'http' : 'https'}://${config.admin.listen}/#token=${made.token}`;
      process.stderr.write(`poplar: admin token ${made.id} made; it is shown only this once.${where}\n`);
    }
  } catch (e) {
    if (e instanceof AdminTokenError) throw new CliError(e.message);
    throw e;
  }
}

export function adminCommand(): Command {
  const admin = new Command('admin').description('the admin API and web console (admin.listen)');
  withConfigOptions(
    admin
      .command('token')
      .description('print a new admin API token (shown once), or revoke or list tokens')
      .option('--revoke <id>', 'revoke the token with this id (or unique id prefix)')
      .option('--list', 'list token ids and when they were made'),
  ).action((opts: TokenOptions) => token(opts));
  return admin;
}

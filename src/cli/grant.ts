/**
 * `poplar grant [--revoke] USER MAILBOX` (R-K3): let USER open another maildrop with
 * `USER user/mailbox`, or take that right away. Grants are kept in the users file whatever
 * `auth.directory` is (R-X19: an LDAP user gets a line holding only its grants).
 */
import { Command } from 'commander';
import { PasswdFile } from '../auth/passwd-file.js';
import { checkUserName, CliError, configFrom, withConfigOptions, type ConfigOptions } from './common.js';

interface GrantOptions extends ConfigOptions {
  revoke?: boolean;
}

async function grant(user: string, mailbox: string, opts: GrantOptions): Promise<void> {
  checkUserName(user);
  if (opts.revoke !== true) checkUserName(mailbox, 'maildrop name');
  const config = configFrom(opts);
  const { createDirectory, withDirectory } = await import('./compose.js');
  const dir = createDirectory(config);
  const ldap = config.auth.directory === 'ldap';
  if (opts.revoke === true) {
    await dir.revoke(user, mailbox);
    process.stdout.write(`"${user}" may no longer open maildrop "${mailbox}"\n`);
  } else {
    // With an LDAP directory (R-X19) the user must exist there; the grant is kept in the users file.
    if (ldap && (await withDirectory(config, (d) => d.lookup(user))) === undefined) throw new CliError(`no such user "${user}" in the LDAP directory`);
    if (ldap) await new PasswdFile(config.auth.users_file).grant(user, mailbox, { create: true });
    else await dir.grant(user, mailbox);
    process.stdout.write(`"${user}" may now open maildrop "${mailbox}" (log in as ${user}/${mailbox})\n`);
  }
}

export function grantCommand(): Command {
  return withConfigOptions(
    new Command('grant')
      .description("let USER open MAILBOX's maildrop (delegated or shared mailbox)")
      .argument('<user>')
      .argument('<mailbox>')
      .option('--revoke', 'take the grant away'),
  ).action((user: string, mailbox: string, opts: GrantOptions) => grant(user, mailbox, opts));
}

/**
 * `poplar grant [--revoke] USER MAILBOX` (R-K3): let USER open another maildrop with
 * `USER user/mailbox`, or take that right away.
 */
import { Command } from 'commander';
import { checkUserName, configFrom, withConfigOptions, type ConfigOptions } from './common.js';

interface GrantOptions extends ConfigOptions {
  revoke?: boolean;
}

async function grant(user: string, mailbox: string, opts: GrantOptions): Promise<void> {
  checkUserName(user);
  if (opts.revoke !== true) checkUserName(mailbox, 'maildrop name');
  const dir = (await import('./compose.js')).createDirectory(configFrom(opts));
  if (opts.revoke === true) {
    await dir.revoke(user, mailbox);
    process.stdout.write(`"${user}" may no longer open maildrop "${mailbox}"\n`);
  } else {
    await dir.grant(user, mailbox);
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

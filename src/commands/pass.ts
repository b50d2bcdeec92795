/**
 * PASS (RFC 1939 §7). R-S15: the password is the rest of the line. R-S13: unknown user and wrong
 * password give the same reply after the same work. R-S10: too many failures close the session.
 * On success the maildrop is opened: the user's own, or with `USER name/mailbox` one that `name`
 * was granted (R-K3). R-S3: the snapshot is taken here; in exclusive mode a held lock is [IN-USE].
 */
import { Pop3Error, toPop3Error } from '../errors.js';
import { ok } from '../protocol/response.js';
import type { CommandContext } from '../session/context.js';
import { Maildrop } from '../session/maildrop.js';
import { authorization } from './types.js';

export const pass = authorization<'PASS'>(async (ctx, state, cmd) => {
  const pending = state.pending;
  if (pending === undefined) throw new Pop3Error('AUTH_ORDER', 'Send USER first');
  ctx.state = { phase: 'authorization', pending: undefined };

  const record = await ctx.services.authenticator.login(pending.user, cmd.password);
  if (record === undefined) return authFailed(ctx, pending.user);

  const mailbox = pending.mailbox ?? record.name;
  if (mailbox !== record.name && !record.grants.includes(mailbox)) {
    ctx.log.warn({ user: record.name, mailbox, event: 'mailbox_denied' }, 'mailbox not granted');
    throw new Pop3Error('MAILBOX_DENIED', `User ${record.name} has no access to mailbox ${mailbox}`, {
      responseCode: 'AUTH',
    });
  }

  let snapshot;
  try {
    snapshot = await ctx.services.store.open(mailbox, { exclusive: ctx.settings.lockMode === 'exclusive' });
  } catch (e) {
    throw toPop3Error(e);
  }
  const maildrop = new Maildrop(snapshot);
  const { count, size } = maildrop.stat();
  ctx.stats.user = record.name;
  ctx.stats.mailbox = mailbox;
  ctx.stats.mailboxMessages = count;
  ctx.stats.mailboxBytes = size;
  ctx.state = { phase: 'transaction', user: record.name, maildrop };
  ctx.log.info({ user: record.name, mailbox, event: 'login', mechanism: 'USER' }, 'login');
  ctx.reply(ok(`${mailbox} has ${count} message${count === 1 ? '' : 's'} (${size} octets)`));
});

/** One failure path for every reason, so nothing tells an unknown user from a wrong password. */
function authFailed(ctx: CommandContext, user: string): never {
  ctx.stats.authFailures++;
  ctx.log.warn({ user, event: 'auth_failed', mechanism: 'USER', ip: ctx.remoteAddress }, 'authentication failed');
  const tooMany = ctx.stats.authFailures >= ctx.settings.maxAuthFailures;
  throw new Pop3Error(
    'AUTH_FAILED',
    tooMany ? 'Authentication failed, too many failures, closing connection' : 'Authentication failed',
    { responseCode: 'AUTH', disconnect: tooMany },
  );
}

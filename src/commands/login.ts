/**
 * What every login method shares once the credential is proven (PASS, APOP, AUTH): the master-user
 * decision (R-X14), the maildrop grant check (R-K3), opening the snapshot (R-S3), and the one
 * failure path (R-S13: the same text for every reason; R-X13: one log line per failure, with user,
 * IP and mechanism, never the secret; R-S10: too many failures close the session).
 */
import type { UserRecord } from '../auth/directory.js';
import { Pop3Error, toPop3Error } from '../errors.js';
import { ok } from '../protocol/response.js';
import type { CommandContext } from '../session/context.js';
import { Maildrop } from '../session/maildrop.js';

export interface LoginRequest {
  /** The user whose credential was proven. */
  readonly record: UserRecord;
  /** R-X14: the user a master user acts as (SASL authzid, or `user*master`). */
  readonly authzid?: string | undefined;
  /** R-K3: a maildrop other than the user's own (`USER name/mailbox`). */
  readonly mailbox?: string | undefined;
  readonly mechanism: string;
}

/**
 * One failure path for every reason, so nothing tells an unknown user from a wrong secret.
 * `malformed`: the client broke the SASL exchange (RFC 5034 §4: -ERR), which says nothing about
 * the user either; it is logged and counted like any failure.
 */
export function authFailed(ctx: CommandContext, user: string | undefined, mechanism: string, reason?: string, malformed = false): never {
  ctx.stats.authFailures++;
  ctx.log.warn({ user, event: 'auth_failed', mechanism, ip: ctx.remoteAddress, reason }, 'authentication failed');
  const tooMany = ctx.stats.authFailures >= ctx.settings.maxAuthFailures;
  const text = malformed ? 'Malformed SASL response, authentication aborted' : 'Authentication failed';
  throw new Pop3Error(
    malformed ? 'BAD_SYNTAX' : 'AUTH_FAILED',
    tooMany ? `${text}, too many failures, closing connection` : text,
    malformed && !tooMany ? { disconnect: false } : { responseCode: 'AUTH', disconnect: tooMany },
  );
}

export async function completeLogin(ctx: CommandContext, req: LoginRequest): Promise<void> {
  let owner = req.record;
  if (req.authzid !== undefined && req.authzid !== '' && req.authzid !== owner.name) {
    // R-X14: only a configured master user may act as someone else; it must be a real user.
    if (!ctx.settings.masterUsers.includes(owner.name)) authFailed(ctx, owner.name, req.mechanism, 'not a master user');
    const target = await ctx.services.authenticator.lookup(req.authzid);
    if (target === undefined) authFailed(ctx, req.authzid, req.mechanism, 'master login to unknown user');
    ctx.log.warn({ event: 'master_login', master: owner.name, user: target.name, mechanism: req.mechanism }, 'master user login');
    owner = target;
  }
  const mailbox = req.mailbox ?? owner.name;
  if (mailbox !== owner.name && !owner.grants.includes(mailbox)) {
    ctx.log.warn({ user: owner.name, mailbox, event: 'mailbox_denied' }, 'mailbox not granted');
    throw new Pop3Error('MAILBOX_DENIED', `User ${owner.name} has no access to mailbox ${mailbox}`, { responseCode: 'AUTH' });
  }
  let snapshot;
  try {
    snapshot = await ctx.services.store.open(mailbox, { exclusive: ctx.settings.lockMode === 'exclusive' });
  } catch (e) {
    throw toPop3Error(e);
  }
  const maildrop = new Maildrop(snapshot);
  const { count, size } = maildrop.stat();
  ctx.stats.user = owner.name;
  ctx.stats.mailbox = mailbox;
  ctx.stats.mailboxMessages = count;
  ctx.stats.mailboxBytes = size;
  ctx.state = { phase: 'transaction', user: owner.name, maildrop };
  ctx.log.info({ user: owner.name, mailbox, event: 'login', mechanism: req.mechanism, tls: ctx.secure }, 'login');
  ctx.reply(ok(`${mailbox} has ${count} message${count === 1 ? '' : 's'} (${size} octets)`));
}

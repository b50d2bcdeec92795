/**
 * What every login method shares once the credential is proven (PASS, APOP, AUTH): the master-user
 * decision (R-X14), the maildrop grant check (R-K3), opening the snapshot (R-S3), and the one
 * failure path (R-S13: the same text for every reason; R-X13: one log line per failure, with user,
 * IP and mechanism, never the secret; R-S10: too many failures close the session; R-X9: the
 * failed-login delay, the same for every reason), the successful path's LOGIN-DELAY (R-X10).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { UserRecord } from '../auth/directory.js';
import { Pop3Error, toPop3Error } from '../errors.js';
import { ok } from '../protocol/response.js';
import type { CommandContext } from '../session/context.js';
import { Maildrop } from '../session/maildrop.js';
import type { LoginTicket } from '../policy/poll-limits.js';
import { channels } from '../observability/channels.js';

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
 *
 * R-X9: the -ERR waits the login throttle's delay, which grows per IP and per user name (known or
 * not, R-S13) and not for a `password` that already failed for that user (given where the
 * mechanism carries one: PASS, PLAIN, LOGIN). The session reads no command meanwhile; the wait
 * ends early only when the connection is gone.
 */
export async function authFailed(
  ctx: CommandContext,
  user: string | undefined,
  mechanism: string,
  reason?: string,
  malformed = false,
  password?: string,
): Promise<never> {
  ctx.stats.authFailures++;
  const delayMs = ctx.services.throttle.failure(ctx.remoteAddress, user, password);
  ctx.log.warn({ user, event: 'auth_failed', mechanism, ip: ctx.remoteAddress, reason, delayMs }, 'authentication failed');
  if (delayMs > 0) await sleep(delayMs, undefined, { signal: ctx.signal }).catch(() => undefined);
  channels.login.publish({ result: 'failure', mechanism });
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
    if (!ctx.settings.masterUsers.includes(owner.name)) return authFailed(ctx, owner.name, req.mechanism, 'not a master user');
    const target = await ctx.services.authenticator.lookup(req.authzid);
    if (target === undefined) return authFailed(ctx, req.authzid, req.mechanism, 'master login to unknown user');
    ctx.log.warn({ event: 'master_login', master: owner.name, user: target.name, mechanism: req.mechanism }, 'master user login');
    owner = target;
  }
  ctx.services.throttle.success(req.record.name); // R-X9: the credential was right
  const mailbox = req.mailbox ?? owner.name;
  if (mailbox !== owner.name && !owner.grants.includes(mailbox)) {
    ctx.log.warn({ user: owner.name, mailbox, event: 'mailbox_denied' }, 'mailbox not granted');
    throw new Pop3Error('MAILBOX_DENIED', `User ${owner.name} has no access to mailbox ${mailbox}`, { responseCode: 'AUTH' });
  }
  // R-X9: Exchange's MaxConnectionsPerUser; the session gives the slot back when it ends.
  const limits = ctx.services.limits;
  if (limits !== undefined && !limits.acquireUser(owner.name)) {
    throw new Pop3Error('MAILBOX_IN_USE', `Too many sessions for ${owner.name}, try again later`, { responseCode: 'IN-USE' });
  }
  // R-X10: LOGIN-DELAY (RFC 2449 §6.5) per maildrop. Not an auth failure: the session stays in
  // AUTHORIZATION. A master user's login (R-X14, an administrator) neither waits nor counts.
  let ticket: LoginTicket | undefined;
  if (owner === req.record && ctx.services.pollLimits !== undefined) {
    try {
      ticket = await ctx.services.pollLimits.admitLogin(mailbox);
    } catch (e) {
      limits?.releaseUser(owner.name);
      const error = toPop3Error(e);
      if (error.code === 'LOGIN_DELAY') ctx.log.info({ user: owner.name, mailbox, event: 'login_delay', mechanism: req.mechanism }, 'login refused: too soon');
      throw error;
    }
  }
  let snapshot;
  try {
    snapshot = await ctx.services.store.open(mailbox, { exclusive: ctx.settings.lockMode === 'exclusive' });
  } catch (e) {
    ticket?.cancel();
    limits?.releaseUser(owner.name);
    throw toPop3Error(e);
  }
  const maildrop = await Maildrop.open(snapshot, ctx.settings.workarounds); // R-X12 sizes; never rejects
  await ticket?.confirm(); // never rejects: a failed write is logged, the login stands
  const { count, size } = maildrop.stat();
  ctx.stats.user = owner.name;
  ctx.stats.mailbox = mailbox;
  ctx.stats.mailboxMessages = count;
  ctx.stats.mailboxBytes = size;
  ctx.state = { phase: 'transaction', user: owner.name, maildrop };
  ctx.log.info({ user: owner.name, mailbox, event: 'login', mechanism: req.mechanism, tls: ctx.secure }, 'login');
  channels.login.publish({ result: 'success', mechanism: req.mechanism });
  ctx.reply(ok(`${mailbox} has ${count} message${count === 1 ? '' : 's'} (${size} octets)`));
}

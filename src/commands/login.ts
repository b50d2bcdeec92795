/**
 * What every login method shares (PASS, APOP, AUTH): the failed-login penalty served before a
 * credential is checked (R-X9), and once the credential is proven the master-user decision
 * (R-X14), the maildrop grant check (R-K3), opening the snapshot (R-S3), and the one failure path
 * (R-S13: the same text for every reason; R-X13: one log line per failure, with user, IP and
 * mechanism, never the secret; R-S10: too many failures close the session; R-X9: the failed-login
 * delay, the same for every reason), the successful path's LOGIN-DELAY (R-X10).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { UserRecord } from '../auth/directory.js';
import { Pop3Error, toPop3Error } from '../errors.js';
import { ok } from '../protocol/response.js';
import type { CommandContext } from '../session/context.js';
import { Maildrop } from '../session/maildrop.js';
import type { LoginTicket } from '../policy/poll-limits.js';
import { channels } from '../observability/channels.js';

/**
 * One login attempt's failed-login penalty (R-X9), as Dovecot's auth penalty
 * (auth-request-handler.c waits the penalty before the mechanism starts): before a credential is
 * checked, the attempt waits the throttle's current delay for the address and for the user name
 * (known or not, R-S13), so neither a right nor a wrong answer comes sooner, on this connection
 * or a new one. Hanging up gains nothing: the counters are the server's, per address and per
 * user, so a new connection serves the same penalty. The wait ends early only when the session
 * finishes (the socket closed, the server shutting down), and the credential is then never
 * checked; a client that only half-closes (a script piping its commands) is answered as usual.
 */
export interface Penalty {
  /**
   * Waits until the address's and `user`'s current penalty has been served by this attempt (a
   * second call for another name waits only the difference). Throws when the session finished
   * meanwhile: the credential is then never checked.
   */
  serve(user: string | undefined): Promise<void>;
  /** How long this attempt has waited so far, ms (logged as `penaltyMs`). */
  readonly waitedMs: number;
}

export function penaltyFor(ctx: CommandContext): Penalty {
  let waited = 0;
  return {
    get waitedMs() {
      return waited;
    },
    async serve(user) {
      const due = (await ctx.services.throttle.current(ctx.remoteAddress, user)) - waited;
      if (due > 0) {
        waited += due;
        await sleep(due, undefined, { signal: ctx.signal }).catch(() => undefined);
      }
      if (ctx.signal.aborted) {
        throw new Pop3Error('AUTH_CANCELLED', 'Server shutting down, try again later', { responseCode: 'SYS/TEMP', disconnect: true });
      }
    },
  };
}

export interface LoginRequest {
  /** The user whose credential was proven. */
  readonly record: UserRecord;
  /** R-X14: the user a master user acts as (SASL authzid, or `user*master`). */
  readonly authzid?: string | undefined;
  /** R-K3: a maildrop other than the user's own (`USER name/mailbox`). */
  readonly mailbox?: string | undefined;
  readonly mechanism: string;
  /** The penalty this attempt served before its credential was checked (R-X9). */
  readonly penalty: Penalty;
  /** The login cache let the user in (logged as `cached`). */
  readonly cached?: boolean;
}

export interface FailedLogin {
  /** The user name tried, when the mechanism got that far. */
  readonly user?: string | undefined;
  readonly mechanism: string;
  /** For the log line only. */
  readonly reason?: string | undefined;
  /**
   * The client broke the SASL exchange (RFC 5034 §4: -ERR), which says nothing about the user
   * either; it is logged and counted like any failure.
   */
  readonly malformed?: boolean;
  /** The password that failed, where the mechanism carries one (PASS, PLAIN, LOGIN); never logged. */
  readonly password?: string | undefined;
  /** The penalty served before the check; absent where nothing was checked. */
  readonly penalty?: Penalty;
}

/**
 * R-S10: counts a failed or abandoned login (a failed credential, a malformed or over-long SASL
 * response, a `*` cancel) toward `pop3.max_auth_failures`; true once the session must close.
 */
export function countAuthFailure(ctx: CommandContext): boolean {
  ctx.stats.authFailures++;
  return ctx.stats.authFailures >= ctx.settings.maxAuthFailures;
}

/**
 * One failure path for every reason, so nothing tells an unknown user from a wrong secret.
 *
 * R-X9: the failure is counted by the login throttle at once (per IP and per user name, known or
 * not, R-S13; not again for a `password` that already failed for that user), so the next attempt,
 * on any connection, serves the grown penalty before its check; then the -ERR waits that grown
 * delay. The session reads no command meanwhile; the wait ends early only when the connection is
 * gone.
 */
export async function authFailed(ctx: CommandContext, f: FailedLogin): Promise<never> {
  const tooMany = countAuthFailure(ctx);
  const delayMs = await ctx.services.throttle.failure(ctx.remoteAddress, f.user, f.password);
  // `ip` is bound to the session's logger (session.ts): one field per line (R-X13, fail2ban).
  ctx.log.warn(
    { user: f.user, event: 'auth_failed', mechanism: f.mechanism, reason: f.reason, penaltyMs: f.penalty?.waitedMs ?? 0, delayMs },
    'authentication failed',
  );
  if (delayMs > 0) await sleep(delayMs, undefined, { signal: ctx.signal }).catch(() => undefined);
  channels.login.publish({ result: 'failure', mechanism: f.mechanism });
  const malformed = f.malformed === true;
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
    if (!ctx.settings.masterUsers.includes(owner.name) && owner.master !== true) {
      return authFailed(ctx, { user: owner.name, mechanism: req.mechanism, reason: 'not a master user', penalty: req.penalty });
    }
    const target = await ctx.services.authenticator.lookup(req.authzid);
    if (target === undefined) {
      return authFailed(ctx, { user: req.authzid, mechanism: req.mechanism, reason: 'master login to unknown user', penalty: req.penalty });
    }
    ctx.log.warn({ event: 'master_login', master: owner.name, user: target.name, mechanism: req.mechanism }, 'master user login');
    owner = target;
  }
  ctx.services.throttle.success(req.record.name); // R-X9: the credential was right
  // The user's own maildrop is named like the user unless the directory names it (LDAP maildrop_attribute).
  const own = owner.maildrop ?? owner.name;
  const mailbox = req.mailbox ?? own;
  if (mailbox !== own && !owner.grants.includes(mailbox)) {
    ctx.log.warn({ user: owner.name, mailbox, event: 'mailbox_denied' }, 'mailbox not granted');
    throw new Pop3Error('MAILBOX_DENIED', `User ${owner.name} has no access to mailbox ${mailbox}`, { responseCode: 'AUTH' });
  }
  // R-X9: Exchange's MaxConnectionsPerUser; the session gives the slot back when it ends.
  const limits = ctx.services.limits;
  if (limits !== undefined && !(await limits.acquireUser(owner.name))) {
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
  const penaltyMs = req.penalty.waitedMs;
  ctx.log.info({ user: owner.name, mailbox, event: 'login', mechanism: req.mechanism, tls: ctx.secure, ...(penaltyMs > 0 ? { penaltyMs } : {}), ...(req.cached === true ? { cached: true } : {}) }, 'login');
  channels.login.publish({ result: 'success', mechanism: req.mechanism });
  ctx.reply(ok(`${mailbox} has ${count} message${count === 1 ? '' : 's'} (${size} octets)`));
}

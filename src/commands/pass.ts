/**
 * PASS (RFC 1939 §7). R-S15: the password is the rest of the line. R-S13: unknown user and wrong
 * password give the same reply after the same work. R-S14: refused on an unprotected connection
 * (the guard). R-X14: `USER name*master` logs a master user in to `name`'s maildrop. R-X9: the
 * address's and the user's failed-login penalty is served before the password is checked.
 */
import { Pop3Error } from '../errors.js';
import { authFailed, completeLogin, penaltyFor } from './login.js';
import { authorization } from './types.js';

/** Dovecot's master-user separator: `USER alice*admin` with admin's password opens alice's maildrop. */
const MASTER_SEPARATOR = '*';

export const pass = authorization<'PASS'>(
  async (ctx, state, cmd) => {
    const pending = state.pending;
    if (pending === undefined) throw new Pop3Error('AUTH_ORDER', 'Send USER first');
    ctx.state = { phase: 'authorization', pending: undefined };

    let name = pending.user;
    let authzid: string | undefined;
    const star = name.lastIndexOf(MASTER_SEPARATOR);
    if (star > 0 && star < name.length - 1 && (ctx.settings.masterUsers.length > 0 || ctx.settings.directoryMasters === true)) {
      authzid = name.slice(0, star);
      name = name.slice(star + 1);
    }
    const penalty = penaltyFor(ctx);
    await penalty.serve(name);
    const seen = { cached: false };
    const record = await ctx.services.authenticator.login(name, cmd.password, seen);
    // R-X9: the password goes to the throttle only, to spot a client repeating a stale one.
    if (record === undefined) return authFailed(ctx, { user: name, mechanism: 'USER', password: cmd.password, penalty });
    await completeLogin(ctx, { record, authzid, mailbox: pending.mailbox, mechanism: 'USER', penalty, cached: seen.cached });
  },
  { plaintext: true },
);

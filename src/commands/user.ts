/**
 * USER (RFC 1939 §7) with Exchange's forms (R-K3): `name`, `domain\name`, `domain\name/mailbox`.
 * The domain is accepted and not used (one directory serves the server). R-S13: the reply is the
 * same `+OK` whether or not the user exists. R-S14: refused by the guard, before the name is looked
 * at, where plaintext logins are not allowed.
 */
import { Pop3Error } from '../errors.js';
import { ok } from '../protocol/response.js';
import type { PendingUser } from '../session/state.js';
import { authorization } from './types.js';

export function parseUserArgument(arg: string): PendingUser | undefined {
  const backslash = arg.indexOf('\\');
  const rest = backslash === -1 ? arg : arg.slice(backslash + 1);
  const slash = rest.indexOf('/');
  const user = slash === -1 ? rest : rest.slice(0, slash);
  const mailbox = slash === -1 ? undefined : rest.slice(slash + 1);
  if (user.length === 0 || mailbox === '') return undefined;
  return { user, mailbox };
}

export const user = authorization<'USER'>(
  (ctx, _state, cmd) => {
    const pending = parseUserArgument(cmd.user);
    if (pending === undefined) {
      throw new Pop3Error('BAD_SYNTAX', 'Use USER name, USER domain\\name or USER domain\\name/mailbox');
    }
    ctx.state = { phase: 'authorization', pending };
    ctx.reply(ok('Send your password'));
  },
  { plaintext: true },
);

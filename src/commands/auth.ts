/**
 * AUTH (RFC 5034, R-S9, R-X4): `AUTH mechanism [initial-response]`. Challenges go out as
 * `+ base64` lines; each client response is one line of base64 (`=` or empty for an empty one,
 * RFC 5034 §4), read with the SASL line limit, not the command limit. `*` cancels. A response that
 * is not base64 fails the exchange with -ERR. PLAIN and LOGIN follow R-S14's plaintext policy.
 * `AUTH` alone lists the mechanisms (RFC 1734 clients such as Outlook ask this way).
 * R-X9: every mechanism checks its credential only after the failed-login penalty of the address
 * and the user is served (login.ts Penalty, through the exchange's env), and no verdict or error
 * challenge goes out before it. R-S10: a cancel and an over-long response count toward
 * `pop3.max_auth_failures` as a failed login does.
 */
import { MECHANISMS } from '../auth/sasl/index.js';
import type { Mechanism } from '../auth/sasl/mechanism.js';
import { Pop3Error } from '../errors.js';
import { multiline } from '../protocol/response.js';
import type { CommandContext } from '../session/context.js';
import { plaintextRefused } from '../session/guard.js';
import { withPenalty } from '../session/sasl-env.js';
import { authFailed, completeLogin, countAuthFailure, penaltyFor } from './login.js';
import { authorization } from './types.js';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict base64 (RFC 4648 §4, padded); `=` alone is the empty response. */
export function decodeSaslResponse(text: string): Buffer | undefined {
  if (text === '=' || text === '') return Buffer.alloc(0);
  return BASE64.test(text) ? Buffer.from(text, 'base64') : undefined;
}

/** The mechanisms to show in CAPA and to accept now: configured, usable here, allowed by R-S14. */
export function offeredMechanisms(ctx: CommandContext): Mechanism[] {
  return ctx.settings.mechanisms
    .map((name) => MECHANISMS[name])
    .filter((m): m is Mechanism => m !== undefined && m.usable(ctx.saslEnv) && (!m.plaintext || ctx.plaintextAllowed));
}

export const auth = authorization<'AUTH'>(async (ctx, _state, cmd) => {
  if (cmd.mechanism === undefined) {
    ctx.reply(multiline('Methods supported', offeredMechanisms(ctx).map((m) => m.name)));
    return;
  }
  const name = cmd.mechanism;
  const configured = ctx.settings.mechanisms.includes(name) ? MECHANISMS[name] : undefined;
  if (configured?.plaintext === true && !ctx.plaintextAllowed) throw plaintextRefused(ctx);
  if (configured === undefined || !configured.usable(ctx.saslEnv)) {
    throw new Pop3Error('BAD_SYNTAX', `Unsupported authentication mechanism ${name.slice(0, 20)}`);
  }
  let response: Buffer | undefined;
  if (cmd.initialResponse !== undefined) {
    response = decodeSaslResponse(cmd.initialResponse);
    if (response === undefined) return authFailed(ctx, { mechanism: name, reason: 'initial response is not base64', malformed: true });
  }
  const penalty = penaltyFor(ctx);
  const exchange = configured.start(withPenalty(ctx.saslEnv, (user) => penalty.serve(user)));
  for (;;) {
    const step = await exchange.step(response);
    if (step.kind === 'success') {
      await penalty.serve(step.record.name);
      return completeLogin(ctx, { record: step.record, authzid: step.authzid, mechanism: name, penalty });
    }
    if (step.kind === 'failure') {
      await penalty.serve(step.user);
      return authFailed(ctx, { user: step.user, mechanism: name, reason: step.reason, malformed: step.malformed === true, password: step.password, penalty });
    }
    const failing = step.failing;
    if (failing !== undefined) await penalty.serve(failing.user);
    // RFC 5034 §4: "+" SP base64 CRLF; not subject to the 512-octet status-line cut (R-S6 is for status lines).
    ctx.reply(Buffer.from(`+ ${step.data.toString('base64')}\r\n`, 'latin1'));
    const event = await ctx.readResponse();
    if (event === undefined) {
      ctx.end('disconnected');
      // A client that hangs up on an error challenge (curl does, for XOAUTH2) still failed: log it.
      if (failing !== undefined) return authFailed(ctx, { user: failing.user, mechanism: name, reason: failing.reason, penalty });
      return;
    }
    if (event.kind === 'too-long') {
      const tooMany = countAuthFailure(ctx);
      ctx.log.warn({ event: 'auth_failed', mechanism: name, reason: 'response too long' }, 'authentication failed');
      throw abandoned('LINE_TOO_LONG', 'SASL response too long, authentication aborted', tooMany);
    }
    const text = event.line.toString('latin1');
    if (text === '*') {
      // A client that cancels after an error challenge (curl does, for XOAUTH2) still failed.
      if (failing !== undefined) return authFailed(ctx, { user: failing.user, mechanism: name, reason: failing.reason, penalty });
      const tooMany = countAuthFailure(ctx);
      ctx.log.info({ event: 'auth_cancelled', mechanism: name }, 'authentication cancelled');
      throw abandoned('AUTH_CANCELLED', 'Authentication cancelled', tooMany);
    }
    response = decodeSaslResponse(text);
    if (response === undefined) {
      return authFailed(ctx, { user: failing?.user, mechanism: name, reason: 'response is not base64', malformed: true, penalty });
    }
  }
});

/** An exchange the client gave up on or broke; past `pop3.max_auth_failures` the session closes (R-S10). */
function abandoned(code: 'LINE_TOO_LONG' | 'AUTH_CANCELLED', text: string, tooMany: boolean): Pop3Error {
  return tooMany
    ? new Pop3Error(code, `${text}, too many failures, closing connection`, { responseCode: 'AUTH', disconnect: true })
    : new Pop3Error(code, text);
}

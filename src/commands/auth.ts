/**
 * AUTH (RFC 5034, R-S9, R-X4): `AUTH mechanism [initial-response]`. Challenges go out as
 * `+ base64` lines; each client response is one line of base64 (`=` or empty for an empty one,
 * RFC 5034 §4), read with the SASL line limit, not the command limit. `*` cancels. A response that
 * is not base64 fails the exchange with -ERR. PLAIN and LOGIN follow R-S14's plaintext policy.
 * `AUTH` alone lists the mechanisms (RFC 1734 clients such as Outlook ask this way).
 */
import { MECHANISMS } from '../auth/sasl/index.js';
import type { Mechanism } from '../auth/sasl/mechanism.js';
import { Pop3Error } from '../errors.js';
import { multiline } from '../protocol/response.js';
import type { CommandContext } from '../session/context.js';
import { plaintextRefused } from '../session/guard.js';
import { authFailed, completeLogin } from './login.js';
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
    if (response === undefined) return authFailed(ctx, undefined, name, 'initial response is not base64', true);
  }
  const exchange = configured.start(ctx.saslEnv);
  for (;;) {
    const step = await exchange.step(response);
    if (step.kind === 'success') {
      return completeLogin(ctx, { record: step.record, authzid: step.authzid, mechanism: name });
    }
    if (step.kind === 'failure') {
      return authFailed(ctx, step.user, name, step.reason, step.malformed === true, step.password);
    }
    // RFC 5034 §4: "+" SP base64 CRLF; not subject to the 512-octet status-line cut (R-S6 is for status lines).
    ctx.reply(Buffer.from(`+ ${step.data.toString('base64')}\r\n`, 'latin1'));
    const event = await ctx.readResponse();
    if (event === undefined) {
      ctx.end('disconnected');
      // A client that hangs up on an error challenge (curl does, for XOAUTH2) still failed: log it.
      if (step.failing !== undefined) return authFailed(ctx, step.failing.user, name, step.failing.reason);
      return;
    }
    if (event.kind === 'too-long') {
      ctx.stats.authFailures++;
      ctx.log.warn({ event: 'auth_failed', mechanism: name, ip: ctx.remoteAddress, reason: 'response too long' }, 'authentication failed');
      throw new Pop3Error('LINE_TOO_LONG', 'SASL response too long, authentication aborted');
    }
    const text = event.line.toString('latin1');
    if (text === '*') {
      // A client that cancels after an error challenge (curl does, for XOAUTH2) still failed.
      if (step.failing !== undefined) return authFailed(ctx, step.failing.user, name, step.failing.reason);
      throw new Pop3Error('AUTH_CANCELLED', 'Authentication cancelled');
    }
    response = decodeSaslResponse(text);
    if (response === undefined) return authFailed(ctx, step.failing?.user, name, 'response is not base64', true);
  }
});

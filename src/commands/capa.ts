/**
 * CAPA (RFC 2449 §5, R-X1). Capabilities differ before and after login as RFC 2449 allows: USER
 * is offered only in AUTHORIZATION; EXPIRE and LOGIN-DELAY (§6.5, §6.7; R-X10) show the server
 * default (with USER when it varies per user) before login and the maildrop's own value after.
 */
import { multiline } from '../protocol/response.js';
import { offeredMechanisms } from './auth.js';
import { anyState } from './types.js';

export const IMPLEMENTATION = 'poplar';

export const capa = anyState<'CAPA'>(async (ctx, state) => {
  const caps = ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING'];
  if (state.phase === 'authorization') {
    // R-S14: USER and the SASL list only where they may be used; STLS only where it is possible.
    if (ctx.plaintextAllowed) caps.splice(1, 0, 'USER');
    const sasl = offeredMechanisms(ctx).map((m) => m.name);
    if (sasl.length > 0) caps.push(`SASL ${sasl.join(' ')}`);
    if (ctx.stlsAvailable) caps.push('STLS');
    caps.push('UTF8 USER'); // RFC 6856 §2, R-X5: UTF-8 in USER/PASS (and SASL) names and passwords
  }
  const policy = ctx.services.policy;
  if (policy !== undefined) caps.push(...(await policy.capabilities(state.phase === 'transaction' ? state.maildrop.mailbox : undefined)));
  caps.push(`IMPLEMENTATION ${IMPLEMENTATION}`);
  ctx.reply(multiline('Capability list follows', caps));
});

/**
 * CAPA (RFC 2449 §5, R-X1). Capabilities differ before and after login as RFC 2449 allows: USER
 * is offered only in AUTHORIZATION.
 */
import { multiline } from '../protocol/response.js';
import { anyState } from './types.js';

export const IMPLEMENTATION = 'poplar';

export const capa = anyState<'CAPA'>((ctx, state) => {
  const caps = ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING'];
  if (state.phase === 'authorization') caps.splice(1, 0, 'USER');
  caps.push(`IMPLEMENTATION ${IMPLEMENTATION}`);
  ctx.reply(multiline('Capability list follows', caps));
});

/**
 * STLS (RFC 2595 §4, R-X3): `+OK`, then the TLS handshake. Refused inside TLS (implicit TLS or a
 * second STLS) and, through the guard's states, after login. Any plaintext the client pipelined
 * behind STLS is discarded by the session, never executed. After the handshake the session is
 * back in a fresh AUTHORIZATION state: nothing learnt in plaintext (a pending USER) carries over.
 */
import { Pop3Error } from '../errors.js';
import { INITIAL_STATE } from '../session/state.js';
import { authorization } from './types.js';

export const stls = authorization<'STLS'>(async (ctx) => {
  if (ctx.secure) throw new Pop3Error('TLS_UNAVAILABLE', 'Already using TLS');
  if (!ctx.stlsAvailable) throw new Pop3Error('TLS_UNAVAILABLE', 'STLS is not available on this server');
  ctx.state = INITIAL_STATE;
  if (!(await ctx.startTls())) ctx.end('tls handshake failed');
});

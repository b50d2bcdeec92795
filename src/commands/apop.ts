/**
 * APOP (RFC 1939 §7, R-K9) is off by default, as in Exchange; it answers so, instead of as an
 * unknown command, so a client can fall back to USER/PASS.
 */
import { Pop3Error } from '../errors.js';
import { authorization } from './types.js';

export const apop = authorization<'APOP'>(() => {
  throw new Pop3Error('DISABLED', 'APOP is not enabled on this server, use USER and PASS', { responseCode: 'AUTH' });
});

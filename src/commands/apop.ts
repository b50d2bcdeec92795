/**
 * APOP (RFC 1939 §7, R-K2, R-K9): `APOP name digest`, digest = MD5(banner ‖ secret) in lower-case
 * hex, the banner being the `<pid.clock@host>` of this session's greeting. Off by default, as in
 * Exchange; when off it answers so (not as an unknown command), so a client can fall back to
 * USER/PASS. A user without a stored shared secret fails like a wrong one (R-S13): the digest is
 * then checked against a random secret. The secret is not sent, so R-S14 does not apply. R-X9:
 * the address's and the user's failed-login penalty is served before the digest is checked.
 */
import { createHash, randomBytes } from 'node:crypto';
import { sharedSecret } from '../auth/credentials.js';
import { safeEqual } from '../auth/schemes.js';
import { Pop3Error } from '../errors.js';
import { authFailed, completeLogin, penaltyFor } from './login.js';
import { parseUserArgument } from './user.js';
import { authorization } from './types.js';

export function apopDigest(banner: string, secret: Buffer): string {
  return createHash('md5').update(banner, 'latin1').update(secret).digest('hex');
}

export const apop = authorization<'APOP'>(async (ctx, _state, cmd) => {
  const banner = ctx.apopBanner;
  if (banner === undefined) {
    throw new Pop3Error('DISABLED', 'APOP is not enabled on this server, use USER and PASS', { responseCode: 'AUTH' });
  }
  const target = parseUserArgument(cmd.user);
  if (target === undefined || !/^[0-9a-fA-F]{32}$/.test(cmd.digest)) throw new Pop3Error('BAD_SYNTAX', 'Use APOP name digest');
  const penalty = penaltyFor(ctx);
  await penalty.serve(target.user);
  const record = await ctx.services.authenticator.lookup(target.user);
  const secret = (record && sharedSecret(record)) ?? randomBytes(16);
  const good = safeEqual(Buffer.from(apopDigest(banner, secret)), Buffer.from(cmd.digest.toLowerCase()));
  if (!good || record === undefined) return authFailed(ctx, { user: target.user, mechanism: 'APOP', penalty });
  await completeLogin(ctx, { record, mailbox: target.mailbox, mechanism: 'APOP', penalty });
});

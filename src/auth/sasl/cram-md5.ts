/**
 * CRAM-MD5 (RFC 2195): the server sends `<random.clock@host>`; the client answers
 * `user HMAC-MD5(secret, challenge)` in lower-case hex. The server needs only the secret's HMAC
 * contexts (credentials.ts, Dovecot's `{CRAM-MD5}`); an unknown user or a user without them is
 * checked against random contexts, failing the same way.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { cramCredential } from '../credentials.js';
import { hmacMd5FromContexts } from '../md5-context.js';
import { safeEqual } from '../schemes.js';
import { challenge, decodeUtf8, failure, type Mechanism } from './mechanism.js';

export function cramDigest(secret: Buffer, challengeText: string): string {
  return createHmac('md5', secret).update(challengeText, 'latin1').digest('hex');
}

export const cramMd5: Mechanism = {
  name: 'CRAM-MD5',
  plaintext: false,
  usable: () => true,
  start(env) {
    const text = `<${randomBytes(8).toString('hex')}.${Date.now()}@${env.hostname}>`;
    let sent = false;
    return {
      async step(response) {
        if (!sent) {
          sent = true;
          // RFC 2195 has no initial response: an AUTH line carrying one is a client error.
          if (response !== undefined) return failure('unexpected initial response', undefined, true);
          return challenge(text);
        }
        const answer = response === undefined ? undefined : decodeUtf8(response);
        const m = answer === undefined ? null : /^(.+) ([0-9a-fA-F]{32})$/.exec(answer);
        if (!m) return failure('malformed CRAM-MD5 response', undefined, true);
        const [user, digest] = [m[1]!, m[2]!.toLowerCase()];
        const record = await env.lookup(user);
        const contexts = (record && cramCredential(record)) ?? randomBytes(32);
        const expected = hmacMd5FromContexts(contexts, Buffer.from(text, 'latin1')).toString('hex');
        const ok = safeEqual(Buffer.from(expected), Buffer.from(digest)) && record !== undefined;
        return ok ? { kind: 'success', record } : failure('bad credentials', user);
      },
    };
  },
};

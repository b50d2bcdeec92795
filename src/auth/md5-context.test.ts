/** CRAM-MD5 contexts (Dovecot's `{CRAM-MD5}`): HMAC-MD5 resumed from them equals node:crypto's. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { cramContexts, hmacMd5FromContexts } from './md5-context.js';

describe('CRAM-MD5 contexts', () => {
  it('R-X4 HMAC-MD5 from stored contexts equals HMAC-MD5 from the key, for short, 64-octet and long keys', () => {
    // RFC 2195 §2's example first: secret "tanstaaftanstaaf".
    const rfc = hmacMd5FromContexts(cramContexts(Buffer.from('tanstaaftanstaaf')), Buffer.from('<1896.697170952@postoffice.reston.mci.net>'));
    assert.equal(rfc.toString('hex'), 'b913a602c7eda7a495b4e6e7334d3890');
    for (const keyLen of [0, 1, 16, 63, 64, 65, 200]) {
      for (const msgLen of [0, 1, 55, 56, 63, 64, 119, 120, 1000]) {
        const key = randomBytes(keyLen);
        const msg = randomBytes(msgLen);
        assert.deepEqual(hmacMd5FromContexts(cramContexts(key), msg), createHmac('md5', key).update(msg).digest(), `${keyLen}/${msgLen}`);
      }
    }
  });
});

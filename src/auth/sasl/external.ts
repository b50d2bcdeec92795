/**
 * EXTERNAL (RFC 4422 Appendix A) with TLS client certificates (R-X4): the identity is the
 * verified certificate's subject common name, or one of its subjectAltName e-mail addresses;
 * the client's message is the authorization identity, empty for "the one the certificate
 * names". Offered only when the connection carries a certificate the configured CA verified.
 */
import { decodeUtf8, failure, type Mechanism } from './mechanism.js';

export const external: Mechanism = {
  name: 'EXTERNAL',
  plaintext: false,
  usable: (env) => env.peer !== undefined,
  start(env) {
    return {
      async step(response) {
        const peer = env.peer;
        if (peer === undefined) return failure('no verified client certificate');
        // RFC 4422 A.1: without an initial response the client sends its message after an empty challenge.
        if (response === undefined) return { kind: 'challenge', data: Buffer.alloc(0) };
        const authzid = decodeUtf8(response);
        if (authzid === undefined) return failure('invalid UTF-8', undefined, true);
        const names = [peer.commonName, ...peer.emails].filter((n): n is string => n !== undefined && n !== '');
        const wanted = authzid === '' ? names[0] : names.find((n) => n === authzid);
        const record = wanted === undefined ? undefined : await env.lookup(wanted);
        return record === undefined ? failure('certificate names no user', authzid || names[0]) : { kind: 'success', record };
      },
    };
  },
};

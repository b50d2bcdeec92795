/**
 * PLAIN (RFC 4616): one message `[authzid] NUL authcid NUL passwd`, UTF-8. The password goes
 * through the same check as PASS. An authzid naming another user is returned for the caller's
 * master-user decision (R-X14). Plaintext: allowed only under R-S14's policy.
 */
import { badPassword, challenge, decodeUtf8, failure, type Mechanism } from './mechanism.js';

export const plain: Mechanism = {
  name: 'PLAIN',
  plaintext: true,
  usable: () => true,
  start(env) {
    return {
      async step(response) {
        // RFC 4422 §5: no initial response -> an empty challenge, the client then sends the message.
        if (response === undefined) return challenge('');
        const parts = response.toString('latin1').split('\0');
        if (parts.length !== 3) return failure('malformed PLAIN message', undefined, true);
        const [authzid, authcid, passwd] = [0, 1, 2].map((i) => {
          const start = parts.slice(0, i).reduce((n, p) => n + p.length + 1, 0);
          return decodeUtf8(response.subarray(start, start + parts[i]!.length));
        });
        if (authzid === undefined || authcid === undefined || passwd === undefined) return failure('invalid UTF-8', undefined, true);
        if (authcid === '' || passwd === '') return failure('empty authcid or password', authcid || undefined, true);
        const record = await env.verifyPassword(authcid, passwd);
        if (record === undefined) return badPassword(authcid, passwd);
        return authzid === '' || authzid === authcid ? { kind: 'success', record } : { kind: 'success', record, authzid };
      },
    };
  },
};

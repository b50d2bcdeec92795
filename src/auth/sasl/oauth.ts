/**
 * OAUTHBEARER (RFC 7628) and XOAUTH2 (Google's predecessor), both carrying a bearer token that
 * TokenVerifier checks as a JWT.
 *   OAUTHBEARER  gs2-header ^A host=…^A port=…^A auth=Bearer <token> ^A^A     (RFC 7628 §3.1)
 *   XOAUTH2      user=<name> ^A auth=Bearer <token> ^A^A
 * On a bad token the server sends an error as a challenge (RFC 7628 §3.2.2: JSON with
 * "status"); the client answers (^A for OAUTHBEARER, empty for XOAUTH2) and the exchange fails.
 * A user named by the client must equal the token's user. The user must exist in the directory.
 * The failed-login penalty (R-X9) is served before the token is verified.
 */
import { challenge, decodeUtf8, failure, type ExchangeEnv, type Mechanism, type SaslExchange, type SaslStep } from './mechanism.js';

interface BearerMessage {
  readonly user: string | undefined;
  readonly token: string;
}

function kvPairs(s: string): Map<string, string> | undefined {
  if (!s.endsWith('\x01\x01')) return undefined;
  const out = new Map<string, string>();
  for (const kv of s.slice(0, -2).split('\x01')) {
    const eq = kv.indexOf('=');
    if (eq <= 0) return undefined;
    out.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  return out;
}

function bearer(auth: string | undefined): string | undefined {
  const m = auth === undefined ? null : /^Bearer ([\x21-\x7e]+)$/i.exec(auth);
  return m ? m[1] : undefined;
}

export function parseOauthbearer(s: string): BearerMessage | undefined {
  const m = /^(?:n|y),(?:a=([^,]*))?,\x01(.*)$/s.exec(s);
  if (!m) return undefined;
  const kv = kvPairs(m[2]!);
  const token = bearer(kv?.get('auth'));
  if (token === undefined) return undefined;
  const user = m[1] === undefined || m[1] === '' ? undefined : m[1].replace(/=2C/g, ',').replace(/=3D/g, '=');
  return { user, token };
}

export function parseXoauth2(s: string): BearerMessage | undefined {
  const kv = kvPairs(s);
  const token = bearer(kv?.get('auth'));
  const user = kv?.get('user');
  return token === undefined || user === undefined || user === '' ? undefined : { user, token };
}

function bearerMechanism(
  name: string,
  parse: (s: string) => BearerMessage | undefined,
  errorChallenge: () => string,
  ack: (b: Buffer) => boolean,
): Mechanism {
  return {
    name,
    plaintext: false,
    usable: (env) => env.tokens !== undefined,
    start(env: ExchangeEnv): SaslExchange {
      let failed: SaslStep | undefined;
      let asked = false;
      return {
        async step(response) {
          if (failed !== undefined) {
            // The client acknowledged the error challenge; anything else is malformed too.
            return response !== undefined && ack(response) ? failed : failure('bad acknowledgement', undefined, true);
          }
          if (response === undefined && !asked) {
            asked = true;
            return challenge('');
          }
          const text = response === undefined ? undefined : decodeUtf8(response);
          const msg = text === undefined ? undefined : parse(text);
          if (msg === undefined) return failure(`malformed ${name} message`, undefined, true);
          // R-X9: the penalty before the token is checked (the user named, if any; lookup tops it
          // up for the token's user).
          await env.penalty(msg.user);
          const result = await env.tokens!.verify(msg.token);
          const user = result.ok ? result.user : msg.user;
          const record = result.ok && (msg.user === undefined || msg.user === result.user) ? await env.lookup(result.user) : undefined;
          if (record !== undefined) return { kind: 'success', record };
          const reason = result.ok ? 'user mismatch or unknown user' : `token rejected: ${result.reason}`;
          failed = failure(reason, user);
          return { kind: 'challenge', data: Buffer.from(errorChallenge()), failing: { user, reason } };
        },
      };
    },
  };
}

export const oauthbearer = bearerMechanism(
  'OAUTHBEARER',
  parseOauthbearer,
  () => JSON.stringify({ status: 'invalid_token', schemes: 'bearer' }),
  (b) => b.length === 1 && b[0] === 1,
);

export const xoauth2 = bearerMechanism(
  'XOAUTH2',
  parseXoauth2,
  () => JSON.stringify({ status: '401', schemes: 'bearer' }),
  (b) => b.length === 0,
);

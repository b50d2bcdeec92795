/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) against stored keys (credentials.ts): the server never needs
 * the password. Messages (RFC 5802 §7):
 *   client-first  gs2-header client-first-bare     gs2-header = "n,," | "y,," | "n,a=authzid,"
 *   server-first  r=<client nonce + server nonce>,s=<salt>,i=<iterations>
 *   client-final  c=<base64 gs2-header>,r=<nonce>,p=<proof>
 *   server-final  v=<server signature>   sent as a challenge; the client answers with an empty line
 * Channel binding ("p=…", the -PLUS variant) is refused: poplar does not offer SCRAM-SHA-256-PLUS,
 * so a client that asks for binding is mistaken (RFC 5802 §6). A "y" flag is accepted because
 * this server advertises no -PLUS mechanism. An unknown user gets a salt derived from the user
 * name and a per-process secret, so the server-first message looks the same as for a real user.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { SCRAM_ITERATIONS, scramCredential } from '../credentials.js';
import { safeEqual } from '../schemes.js';
import { challenge, decodeUtf8, failure, type ExchangeEnv, type Mechanism, type SaslExchange } from './mechanism.js';
import { saslprep } from './saslprep.js';

const hmac = (key: Buffer, text: string): Buffer => createHmac('sha256', key).update(text, 'utf8').digest();
const sha256 = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

/** RFC 5802 §5.1: `=2C` and `=3D` stand for `,` and `=` in names; any other `=` is malformed. */
function decodeName(s: string): string | undefined {
  if (/=(?!2C|3D)/.test(s)) return undefined;
  return s.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

interface ClientFirst {
  readonly gs2Header: string;
  readonly authzid: string | undefined;
  readonly bare: string;
  readonly user: string;
  readonly nonce: string;
}

export function parseClientFirst(text: string): ClientFirst | string {
  const m = /^([ny]|p=[A-Za-z0-9.-]+),(a=[^,]*)?,(.*)$/.exec(text);
  if (!m) return 'malformed gs2 header';
  if (m[1]!.startsWith('p=')) return 'channel binding is not offered';
  const bare = m[3]!;
  const b = /^(?:m=[^,]*,)?n=([^,]*),r=([\x21-\x2b\x2d-\x7e]+)(?:,.*)?$/.exec(bare);
  if (!b) return 'malformed client-first-message';
  if (bare.startsWith('m=')) return 'mandatory extension not supported';
  const user = decodeName(b[1]!);
  const authzid = m[2] === undefined ? undefined : decodeName(m[2].slice(2));
  if (user === undefined || user === '' || (m[2] !== undefined && authzid === undefined)) return 'malformed name';
  return { gs2Header: `${m[1]},${m[2] ?? ''},`, authzid, bare, user, nonce: b[2]! };
}

export const scramSha256: Mechanism = {
  name: 'SCRAM-SHA-256',
  plaintext: false,
  usable: () => true,
  start: (env) => startScram(env, () => randomBytes(18).toString('base64')),
};

/** The exchange with an injectable server nonce (the RFC 7677 §3 test vector fixes it). */
export function startScram(env: ExchangeEnv, serverNonce: () => string): SaslExchange {
  {
    let stage: 'first' | 'final' | 'done' = 'first';
    let first: ClientFirst;
    let serverFirst = '';
    let nonce = '';
    let keys: { storedKey: Buffer; serverKey: Buffer } | undefined;
    let record: Awaited<ReturnType<typeof env.lookup>>;
    let user = '';
    return {
      async step(response) {
        if (stage === 'first') {
          if (response === undefined) return challenge('');
          const text = decodeUtf8(response);
          const parsed = text === undefined ? 'invalid UTF-8' : parseClientFirst(text);
          if (typeof parsed === 'string') return failure(parsed, undefined, true);
          first = parsed;
          user = saslprep(first.user) ?? first.user;
          record = await env.lookup(user);
          const stored = record === undefined ? undefined : scramCredential(record);
          const salt = stored?.salt ?? hmac(env.serverSecret, `scram-salt:${user}`).subarray(0, 16);
          const iterations = stored?.iterations ?? SCRAM_ITERATIONS;
          keys = stored;
          nonce = first.nonce + serverNonce();
          serverFirst = `r=${nonce},s=${salt.toString('base64')},i=${iterations}`;
          stage = 'final';
          return challenge(serverFirst);
        }
        if (stage === 'final') {
          stage = 'done';
          const text = response === undefined ? undefined : decodeUtf8(response);
          const m = text === undefined ? null : /^c=([A-Za-z0-9+/=]*),r=([^,]+)(?:,.*)?,p=([A-Za-z0-9+/=]+)$/.exec(text);
          if (!m) return failure('malformed client-final-message', user, true);
          if (Buffer.from(m[1]!, 'base64').toString('utf8') !== first.gs2Header) return failure('channel binding mismatch', user);
          if (m[2] !== nonce) return failure('nonce mismatch', user);
          const withoutProof = text!.slice(0, text!.lastIndexOf(',p='));
          const authMessage = `${first.bare},${serverFirst},${withoutProof}`;
          const proof = Buffer.from(m[3]!, 'base64');
          const storedKey = keys?.storedKey ?? randomBytes(32);
          const signature = hmac(storedKey, authMessage);
          if (proof.length !== signature.length) return failure('bad proof length', user);
          const clientKey = Buffer.from(proof.map((b, i) => b ^ signature[i]!));
          if (!safeEqual(sha256(clientKey), storedKey) || record === undefined || keys === undefined) {
            return failure('bad credentials', user);
          }
          const verifier = hmac(keys.serverKey, authMessage).toString('base64');
          return { kind: 'challenge', data: Buffer.from(`v=${verifier}`) };
        }
        // RFC 5034 §4: the server-final data went out as a challenge; the client acknowledges it empty.
        if (response !== undefined && response.length > 0) return failure('unexpected data after server-final', user, true);
        if (record === undefined) return failure('bad credentials', user);
        const authzid = first.authzid;
        return authzid === undefined || authzid === record.name ? { kind: 'success', record } : { kind: 'success', record, authzid };
      },
    };
  }
}

/**
 * NTLM over SASL as curl and fetchmail speak it on POP3 (MS-NLMP; the AUTH exchange of
 * [MS-POP3]): the client sends NEGOTIATE (type 1), the server CHALLENGE (type 2) with a target
 * info block, the client AUTHENTICATE (type 3). Only NTLMv2 responses are accepted (MS-NLMP
 * §3.3.2): NTProofStr = HMAC-MD5(NTOWFv2, ServerChallenge ‖ temp), with
 * NTOWFv2 = HMAC-MD5(NT hash, UTF-16LE(UPPER(user) ‖ domain)). LM and NTLMv1 responses (24-octet
 * NT response) are refused: they are crackable. The NT hash comes from the users file
 * (credentials.ts); a user without one fails like a wrong password. Signing and sealing are not
 * negotiated: POP3 runs NTLM for authentication only.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { ntCredential } from '../credentials.js';
import { safeEqual } from '../schemes.js';
import { challenge, failure, type Mechanism } from './mechanism.js';

const SIGNATURE = Buffer.from('NTLMSSP\0', 'latin1');
const NEGOTIATE_UNICODE = 0x00000001;
const NEGOTIATE_OEM = 0x00000002;
const REQUEST_TARGET = 0x00000004;
const NEGOTIATE_NTLM = 0x00000200;
const NEGOTIATE_ALWAYS_SIGN = 0x00008000;
const TARGET_TYPE_DOMAIN = 0x00010000;
const NEGOTIATE_EXTENDED_SESSIONSECURITY = 0x00080000;
const NEGOTIATE_TARGET_INFO = 0x00800000;

const hmacMd5 = (key: Buffer, ...data: Buffer[]): Buffer => {
  const h = createHmac('md5', key);
  for (const d of data) h.update(d);
  return h.digest();
};

/** MS-NLMP §3.3.2 NTOWFv2 from the NT hash (NTOWFv1). The user name is upper-cased, the domain not. */
export function ntowfv2(ntHash: Buffer, user: string, domain: string): Buffer {
  return hmacMd5(ntHash, Buffer.from(user.toUpperCase() + domain, 'utf16le'));
}

/** MS-NLMP §3.3.2: NTProofStr for `temp` (the blob after the proof in the NT response). */
export function ntProofStr(ntowf: Buffer, serverChallenge: Buffer, temp: Buffer): Buffer {
  return hmacMd5(ntowf, serverChallenge, temp);
}

function avPair(id: number, value: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt16LE(id, 0);
  h.writeUInt16LE(value.length, 2);
  return Buffer.concat([h, value]);
}

/** MS-NLMP §2.2.2.1 AV_PAIRs: NetBIOS domain and computer names, then MsvAvEOL. */
export function targetInfo(domain: string, computer: string): Buffer {
  return Buffer.concat([avPair(2, Buffer.from(domain, 'utf16le')), avPair(1, Buffer.from(computer, 'utf16le')), avPair(0, Buffer.alloc(0))]);
}

/** MS-NLMP §2.2.1.2 CHALLENGE_MESSAGE, Unicode, with target info so clients answer with NTLMv2. */
export function challengeMessage(serverChallenge: Buffer, domain: string, info: Buffer): Buffer {
  const target = Buffer.from(domain, 'utf16le');
  const header = Buffer.alloc(48);
  SIGNATURE.copy(header, 0);
  header.writeUInt32LE(2, 8);
  header.writeUInt16LE(target.length, 12);
  header.writeUInt16LE(target.length, 14);
  header.writeUInt32LE(48, 16);
  const flags = NEGOTIATE_UNICODE | REQUEST_TARGET | NEGOTIATE_NTLM | NEGOTIATE_ALWAYS_SIGN | TARGET_TYPE_DOMAIN |
    NEGOTIATE_EXTENDED_SESSIONSECURITY | NEGOTIATE_TARGET_INFO;
  header.writeUInt32LE(flags >>> 0, 20);
  serverChallenge.copy(header, 24);
  header.writeUInt16LE(info.length, 40);
  header.writeUInt16LE(info.length, 42);
  header.writeUInt32LE(48 + target.length, 44);
  return Buffer.concat([header, target, info]);
}

export interface AuthenticateMessage {
  readonly ntResponse: Buffer;
  readonly user: string;
  readonly domain: string;
}

/** Parses MS-NLMP §2.2.1.3 AUTHENTICATE_MESSAGE; undefined when malformed. */
export function parseAuthenticate(msg: Buffer): AuthenticateMessage | undefined {
  if (msg.length < 64 || !msg.subarray(0, 8).equals(SIGNATURE) || msg.readUInt32LE(8) !== 3) return undefined;
  const field = (at: number): Buffer | undefined => {
    const len = msg.readUInt16LE(at);
    const off = msg.readUInt32LE(at + 4);
    return off + len > msg.length ? undefined : msg.subarray(off, off + len);
  };
  const flags = msg.readUInt32LE(60);
  const text = (b: Buffer): string => (flags & NEGOTIATE_UNICODE ? b.toString('utf16le') : b.toString(flags & NEGOTIATE_OEM ? 'latin1' : 'latin1'));
  const [nt, domain, user] = [field(20), field(28), field(36)];
  if (nt === undefined || domain === undefined || user === undefined) return undefined;
  return { ntResponse: nt, user: text(user), domain: text(domain) };
}

/** True when `ntResponse` is a valid NTLMv2 response for the NT hash and server challenge. */
export function verifyNtlmv2(ntHash: Buffer, user: string, domain: string, serverChallenge: Buffer, ntResponse: Buffer): boolean {
  const temp = ntResponse.subarray(16);
  if (ntResponse.length < 16 + 28 || temp[0] !== 1 || temp[1] !== 1) return false;
  return safeEqual(ntProofStr(ntowfv2(ntHash, user, domain), serverChallenge, temp), ntResponse.subarray(0, 16));
}

const isNegotiate = (b: Buffer): boolean => b.length >= 16 && b.subarray(0, 8).equals(SIGNATURE) && b.readUInt32LE(8) === 1;

export const ntlm: Mechanism = {
  name: 'NTLM',
  plaintext: false,
  usable: () => true,
  start(env) {
    const serverChallenge = randomBytes(8);
    const domain = 'POPLAR';
    let stage: 'negotiate' | 'authenticate' = 'negotiate';
    return {
      async step(response) {
        if (stage === 'negotiate') {
          if (response === undefined || response.length === 0) return challenge('');
          if (!isNegotiate(response)) return failure('malformed NTLM negotiate message', undefined, true);
          stage = 'authenticate';
          const computer = env.hostname.split('.')[0]!.toUpperCase().slice(0, 15) || 'POPLAR';
          return challenge(challengeMessage(serverChallenge, domain, targetInfo(domain, computer)));
        }
        const msg = response === undefined ? undefined : parseAuthenticate(response);
        if (msg === undefined) return failure('malformed NTLM authenticate message', undefined, true);
        const record = msg.user === '' ? undefined : await env.lookup(msg.user);
        const hash = (record && ntCredential(record)) ?? randomBytes(16);
        if (msg.ntResponse.length <= 24) {
          // LM or NTLMv1 (or anonymous): refused whatever the password.
          return failure('LM/NTLMv1 response refused, NTLMv2 required', msg.user);
        }
        const ok = verifyNtlmv2(hash, msg.user, msg.domain, serverChallenge, msg.ntResponse);
        return ok && record !== undefined ? { kind: 'success', record } : failure('bad credentials', msg.user);
      },
    };
  },
};

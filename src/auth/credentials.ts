/**
 * What each login method needs from a user's record (DESIGN.md "credentials carry their
 * schemes"). The password field holds a slow hash for USER/PASS, PLAIN and LOGIN; challenge
 * mechanisms need more, kept in extra fields of the users file:
 *   poplar_scram=<iter>,<salt>,<StoredKey>,<ServerKey>   SCRAM-SHA-256 (RFC 5802 §3, base64)
 *   poplar_nt=<32 hex>                                   NTLM: the NT hash, MD4(UTF-16LE(password))
 *   poplar_cram=<64 hex>                                 CRAM-MD5: the HMAC-MD5 contexts (md5-context.ts)
 *   poplar_secret=<base64 of the password>               APOP: it needs the secret itself (reversible!)
 * A password field in Dovecot's `{PLAIN}`, `{SCRAM-SHA-256}`, `{NTLM}` or `{CRAM-MD5}` schemes
 * serves the same mechanisms; a stored shared secret serves CRAM-MD5 too. A mechanism whose credential is missing fails like a wrong password (R-S13).
 */
import { randomBytes } from 'node:crypto';
import type { Credentials, UserRecord } from './directory.js';
import { cramContexts } from './md5-context.js';
import { saslprep } from './sasl/saslprep.js';
import { hashPassword, schemeOf } from './password.js';
import { formatScramKeys, ntHash, parseScramKeys, scramKeys, type ScramKeys } from './schemes.js';

/** RFC 7677 §4: at least 4096 iterations. */
export const SCRAM_ITERATIONS = 4096;

/** Which extra credentials the enabled login methods need. */
export interface CredentialNeeds {
  readonly scram: boolean;
  readonly nt: boolean;
  readonly cram: boolean;
  readonly secret: boolean;
}

export function needsFor(mechanisms: readonly string[], apop: boolean): CredentialNeeds {
  return {
    scram: mechanisms.some((m) => m.startsWith('SCRAM-SHA-256')),
    nt: mechanisms.includes('NTLM'),
    cram: mechanisms.includes('CRAM-MD5'),
    secret: apop,
  };
}

/** The password field and the extra credentials `poplar user add/passwd` writes. */
export async function makeCredentials(
  password: string,
  opts: { cost: number; needs: CredentialNeeds },
): Promise<{ password: string; credentials: Credentials }> {
  const credentials: Credentials = {};
  const pw = Buffer.from(password, 'utf8');
  // RFC 5802 §2.2: SCRAM hashes the SASLprep'd password (clients prepare theirs the same way).
  const prepped = Buffer.from(saslprep(password) ?? password, 'utf8');
  if (opts.needs.scram) credentials.poplar_scram = formatScramKeys(await scramKeys(prepped, randomBytes(16), SCRAM_ITERATIONS));
  if (opts.needs.nt) credentials.poplar_nt = (await ntHash(password)).toString('hex');
  if (opts.needs.cram) credentials.poplar_cram = cramContexts(pw).toString('hex');
  if (opts.needs.secret) credentials.poplar_secret = pw.toString('base64');
  return { password: await hashPassword(password, { cost: opts.cost }), credentials };
}

function fromPasswordField(record: UserRecord, scheme: string): string | undefined {
  return schemeOf(record.password) === scheme ? record.password.slice(scheme.length + 2) : undefined;
}

/** SCRAM-SHA-256 keys: `poplar_scram`, or a `{SCRAM-SHA-256}` password field. */
export function scramCredential(record: UserRecord): ScramKeys | undefined {
  const text = record.credentials?.['poplar_scram'] ?? fromPasswordField(record, 'SCRAM-SHA-256');
  return text === undefined ? undefined : parseScramKeys(text);
}

/** The NT hash: `poplar_nt`, or an `{NTLM}` password field. */
export function ntCredential(record: UserRecord): Buffer | undefined {
  const text = record.credentials?.['poplar_nt'] ?? fromPasswordField(record, 'NTLM');
  return text !== undefined && /^[0-9a-fA-F]{32}$/.test(text) ? Buffer.from(text, 'hex') : undefined;
}

/** CRAM-MD5's HMAC-MD5 contexts: `poplar_cram`, a `{CRAM-MD5}` password field, or from the shared secret. */
export function cramCredential(record: UserRecord): Buffer | undefined {
  const text = record.credentials?.['poplar_cram'] ?? fromPasswordField(record, 'CRAM-MD5');
  if (text !== undefined) return /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : undefined;
  const secret = sharedSecret(record);
  return secret === undefined ? undefined : cramContexts(secret);
}

/** The shared secret APOP needs: `poplar_secret`, or a `{PLAIN}`/`{CLEARTEXT}` password. */
export function sharedSecret(record: UserRecord): Buffer | undefined {
  const stored = record.credentials?.['poplar_secret'];
  if (stored !== undefined) return /^[A-Za-z0-9+/]*={0,2}$/.test(stored) ? Buffer.from(stored, 'base64') : undefined;
  const plain = fromPasswordField(record, 'PLAIN') ?? fromPasswordField(record, 'CLEARTEXT');
  return plain === undefined ? undefined : Buffer.from(plain, 'utf8');
}

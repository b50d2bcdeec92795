/**
 * Password hashing and verification (R-X8). A stored credential names its scheme in braces, as
 * Dovecot does: `{SCRYPT}$scrypt$ln=15,r=8,p=1$<salt>$<hash>` (PHC string format, unpadded
 * base64). Verifying a scheme is one entry in SCHEMES; Dovecot's schemes are in schemes.ts. Passwords are compared as the UTF-8 bytes
 * given, without Unicode normalisation. The server path uses only the async crypto.scrypt.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { DOVECOT_SCHEMES, type Scheme } from './schemes.js';
import { parseShaCrypt } from './sha-crypt.js';
import { shaCryptPooled } from './sha-crypt-pool.js';

const SCRYPT_R = 8;
const SCRYPT_P = 1;
const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** Cost bounds for hashes poplar makes; config allows 14–20, tests use 14, hashing below 10 is refused. */
const MIN_COST = 10;
const MAX_COST = 20;
/**
 * Bounds on parameters read from a stored hash: a corrupt or hostile users file must not make one
 * login allocate more than scrypt at the highest configurable cost does (128·N·r = 1 GiB).
 */
const MAX_STORED_MEMORY = 128 * 2 ** MAX_COST * SCRYPT_R;

function scryptAsync(pw: Buffer, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(pw, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** Node refuses scrypt when 128·N·r exceeds maxmem; leave headroom above that. */
function scryptOptions(ln: number, r: number, p: number): ScryptOptions {
  const N = 2 ** ln;
  return { N, r, p, maxmem: 2 * 128 * N * r + 1024 * 1024 };
}

const b64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '');
const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

interface ScryptParams {
  ln: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

/** Parses `$scrypt$ln=15,r=8,p=1$<salt>$<hash>`; undefined when malformed or out of bounds. */
function parseScrypt(encoded: string): ScryptParams | undefined {
  const m = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,3})\$([^$]+)\$([^$]+)$/.exec(encoded);
  if (!m) return undefined;
  const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const [saltText, hashText] = [m[4]!, m[5]!];
  if (ln < 1 || r < 1 || p < 1 || p > 16 || 128 * 2 ** ln * r > MAX_STORED_MEMORY) return undefined;
  if (!B64.test(saltText) || !B64.test(hashText)) return undefined;
  const salt = Buffer.from(saltText, 'base64');
  const hash = Buffer.from(hashText, 'base64');
  if (salt.length < 8 || hash.length < 16 || hash.length > 64) return undefined;
  return { ln, r, p, salt, hash };
}

async function verifyScrypt(encoded: string, pw: Buffer): Promise<boolean> {
  const params = parseScrypt(encoded);
  if (!params) return false;
  const { ln, r, p, salt, hash } = params;
  const key = await scryptAsync(pw, salt, hash.length, scryptOptions(ln, r, p));
  return timingSafeEqual(key, hash);
}

/** Verifiable schemes by upper-case name; Dovecot's scheme names are case-insensitive. */
const SCHEMES: Readonly<Record<string, Scheme>> = {
  SCRYPT: { verify: verifyScrypt },
  ...DOVECOT_SCHEMES,
};

/** The scheme named by a stored credential's `{SCHEME}` prefix (upper case), or undefined. */
export function schemeOf(stored: string): string | undefined {
  const m = /^\{([A-Za-z0-9._-]+)\}/.exec(stored);
  return m ? m[1]!.toUpperCase() : undefined;
}

/** A new `{SCRYPT}` credential with a 16-byte random salt and a 32-byte key; cost is log2 N. */
export async function hashPassword(pw: string, opts: { cost: number }): Promise<string> {
  const { cost } = opts;
  if (!Number.isInteger(cost) || cost < MIN_COST || cost > MAX_COST) {
    throw new RangeError(`scrypt cost must be an integer ${MIN_COST}–${MAX_COST}, got ${cost}`);
  }
  const salt = randomBytes(SALT_BYTES);
  const key = await scryptAsync(Buffer.from(pw, 'utf8'), salt, KEY_BYTES, scryptOptions(cost, SCRYPT_R, SCRYPT_P));
  return `{SCRYPT}$scrypt$ln=${cost},r=${SCRYPT_R},p=${SCRYPT_P}$${b64(salt)}$${b64(key)}`;
}

/** True when `pw` matches the stored credential; false for unknown schemes and malformed hashes. */
export async function verifyPassword(stored: string, pw: string): Promise<boolean> {
  const scheme = schemeOf(stored);
  if (scheme === undefined || !Object.hasOwn(SCHEMES, scheme)) return false;
  return SCHEMES[scheme]!.verify(stored.slice(scheme.length + 2), Buffer.from(pw, 'utf8'));
}

/**
 * The two costs a failed password login always pays, whatever failed (R-S13): one scrypt at the
 * configured cost (the scheme poplar hashes with) and one 5,000-round SHA512-CRYPT (Dovecot's
 * default scheme, the one directories migrated from Dovecot hold). A wrong password pays for its
 * own scheme's check and a dummy of the other class; an unknown user pays for two dummies.
 */
export type DummyKind = 'scrypt' | 'sha512-crypt';
export const DUMMY_KINDS: readonly DummyKind[] = ['scrypt', 'sha512-crypt'];

/** Dovecot's and glibc's default SHA-crypt rounds. */
const SHA_CRYPT_DEFAULT_ROUNDS = 5000;

/** Which dummy class verifying `stored` already costs as much as, if any. */
export function costClassOf(stored: string, scryptCost: number): DummyKind | undefined {
  const scheme = schemeOf(stored);
  const encoded = scheme === undefined ? '' : stored.slice(scheme.length + 2);
  if (scheme === 'SCRYPT') {
    const params = parseScrypt(encoded);
    return params !== undefined && params.ln === scryptCost && params.r === SCRYPT_R && params.p === SCRYPT_P ? 'scrypt' : undefined;
  }
  if (scheme === 'SHA512-CRYPT' || (scheme === 'CRYPT' && encoded.startsWith('$6$'))) {
    const params = parseShaCrypt(encoded);
    return params?.alg === 'sha512' && (params.rounds ?? SHA_CRYPT_DEFAULT_ROUNDS) === SHA_CRYPT_DEFAULT_ROUNDS ? 'sha512-crypt' : undefined;
  }
  return undefined;
}

/**
 * Schemes whose check is one plain or salted digest (or the stored text itself): microseconds,
 * against the milliseconds of either dummy. The Authenticator checks them before any dummy.
 */
const CHEAP_SCHEMES: ReadonlySet<string> = new Set([
  'PLAIN', 'CLEARTEXT', 'PLAIN-MD5', 'SHA', 'SHA1', 'SHA256', 'SHA512', 'SSHA', 'SSHA256', 'SSHA512', 'CRAM-MD5', 'NTLM',
]);

/** True when verifying `stored` is one digest's work (CHEAP_SCHEMES). */
export function isCheapScheme(stored: string): boolean {
  const scheme = schemeOf(stored);
  return scheme !== undefined && CHEAP_SCHEMES.has(scheme);
}

/** A salt nobody's hash uses, made once per process; the dummy compares against no real hash. */
const DUMMY_SHA_SALT = randomBytes(12).toString('base64').replace(/[^./0-9A-Za-z]/g, '.');

/**
 * Always false, after the same work as verifying a hash of `kind` (scrypt made at `cost`, or a
 * default SHA512-CRYPT): what a failed login pays for the class its own check did not (R-S13).
 * The SHA-crypt runs on the pool a stored hash's check uses (sha-crypt-pool.ts), so it waits and
 * costs alike.
 */
export async function verifyDummy(pw: string, kind: DummyKind, cost: number): Promise<boolean> {
  const bytes = Buffer.from(pw, 'utf8');
  if (kind === 'sha512-crypt') {
    const out = await shaCryptPooled('sha512', bytes, DUMMY_SHA_SALT);
    timingSafeEqual(Buffer.from(out), Buffer.from(out));
    return false;
  }
  const ln = Math.min(Math.max(Math.trunc(cost), 1), MAX_COST);
  const key = await scryptAsync(bytes, randomBytes(SALT_BYTES), KEY_BYTES, scryptOptions(ln, SCRYPT_R, SCRYPT_P));
  timingSafeEqual(key, Buffer.alloc(KEY_BYTES));
  return false;
}

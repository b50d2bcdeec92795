/**
 * Dovecot's password schemes poplar can verify (doc.dovecot.org "Password schemes"), so an existing
 * passwd-file works unchanged: SHA512-CRYPT, CRYPT (`$6$`, `$5$`, `$2b$`), SHA256-CRYPT, BLF-CRYPT, ARGON2ID/ARGON2I, SSHA512,
 * SSHA256, SSHA, SHA512, SHA256, SHA, PLAIN/CLEARTEXT, PLAIN-MD5, SCRAM-SHA-256, NTLM and CRAM-MD5. Every
 * parameter read from a stored hash is bounded so a hostile users file cannot make one login cost
 * more than the slowest hash poplar itself makes. bcrypt and argon2 come from hash-wasm (WASM, no
 * native addon); the SHA-2 family, PBKDF2 and HMAC from node:crypto; MD4 (NTLM) from hash-wasm
 * because OpenSSL 3 no longer offers it by default.
 */
import { createHash, createHmac, pbkdf2, timingSafeEqual } from 'node:crypto';
import { cramContexts } from './md5-context.js';
import { saslprep } from './sasl/saslprep.js';
import { parseShaCrypt } from './sha-crypt.js';
import { shaCryptPooled } from './sha-crypt-pool.js';

/** hash-wasm (about 40 ms of start-up CPU) is loaded on the first bcrypt, argon2 or NTLM hash, not by every `poplar` process. */
const hashWasm = (): Promise<typeof import('hash-wasm')> => import('hash-wasm');

export interface Scheme {
  /** `encoded` is the stored credential after the `{SCHEME}` prefix. */
  verify(encoded: string, password: Buffer): Promise<boolean>;
}

/** Bounds on parameters read from stored hashes. */
const MAX_BCRYPT_COST = 16;
const MAX_ARGON2_MEMORY_KIB = 512 * 1024;
const MAX_ARGON2_TIME = 16;
const MAX_ARGON2_PARALLEL = 16;
const MAX_PBKDF2_ITERATIONS = 1_000_000;

/** Equal-length constant-time comparison; false for different lengths. */
export function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

const b64 = (s: string): Buffer | undefined => (/^[A-Za-z0-9+/]*={0,2}$/.test(s) ? Buffer.from(s, 'base64') : undefined);

/** `{SSHA512}` and friends: base64(H(password + salt) + salt). */
function salted(alg: string, digestBytes: number): Scheme {
  return {
    async verify(encoded, pw) {
      const raw = b64(encoded.trim());
      if (raw === undefined || raw.length <= digestBytes) return false;
      const salt = raw.subarray(digestBytes);
      return safeEqual(createHash(alg).update(pw).update(salt).digest(), raw.subarray(0, digestBytes));
    },
  };
}

/** `{SHA512}`: base64(H(password)); Dovecot also accepts hex for these. */
function unsalted(alg: string): Scheme {
  return {
    async verify(encoded, pw) {
      const d = createHash(alg).update(pw).digest();
      const text = encoded.trim();
      const stored = /^[0-9a-fA-F]+$/.test(text) && text.length === d.length * 2 ? Buffer.from(text, 'hex') : b64(text);
      return stored !== undefined && safeEqual(d, stored);
    },
  };
}

/** Computed off the event loop, on the same pool as the failed login's dummy (R-S13). */
const shaCryptScheme: Scheme = {
  async verify(encoded, pw) {
    const p = parseShaCrypt(encoded);
    if (p === undefined) return false;
    return safeEqual(Buffer.from(await shaCryptPooled(p.alg, pw, p.salt, p.rounds)), Buffer.from(encoded));
  },
};

const bcryptScheme: Scheme = {
  async verify(encoded, pw) {
    const m = /^\$2[abxy]?\$(\d\d)\$[./A-Za-z0-9]{53}$/.exec(encoded);
    if (!m || Number(m[1]) > MAX_BCRYPT_COST || pw.length > 72) return false;
    // hash-wasm knows $2a$/$2b$; $2y$ (PHP, Dovecot's default) is the same algorithm.
    const { bcryptVerify } = await hashWasm();
    return bcryptVerify({ password: pw, hash: encoded.replace(/^\$2[xy]\$/, '$2b$') });
  },
};

const argon2Scheme: Scheme = {
  async verify(encoded, pw) {
    const m = /^\$argon2(id|i|d)\$(?:v=(\d+)\$)?m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/.exec(encoded);
    if (!m) return false;
    const [mem, time, par] = [Number(m[3]), Number(m[4]), Number(m[5])];
    if (mem > MAX_ARGON2_MEMORY_KIB || time > MAX_ARGON2_TIME || par > MAX_ARGON2_PARALLEL || time < 1 || par < 1) return false;
    const { argon2Verify } = await hashWasm();
    return argon2Verify({ password: pw, hash: encoded });
  },
};

const plain: Scheme = {
  async verify(encoded, pw) {
    return safeEqual(Buffer.from(encoded, 'utf8'), pw);
  },
};

function pbkdf2Async(pw: Buffer, salt: Buffer, iterations: number): Promise<Buffer> {
  return new Promise((resolve, reject) => pbkdf2(pw, salt, iterations, 32, 'sha256', (e, k) => (e ? reject(e) : resolve(k))));
}

/** Dovecot's `{SCRAM-SHA-256}iterations,salt,StoredKey,ServerKey` (RFC 5802 §3 keys, base64). */
export interface ScramKeys {
  readonly iterations: number;
  readonly salt: Buffer;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

export function parseScramKeys(encoded: string): ScramKeys | undefined {
  const parts = encoded.trim().split(',');
  if (parts.length !== 4) return undefined;
  const iterations = Number(parts[0]);
  const [salt, storedKey, serverKey] = parts.slice(1).map(b64);
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_PBKDF2_ITERATIONS) return undefined;
  if (!salt || !storedKey || !serverKey || storedKey.length !== 32 || serverKey.length !== 32) return undefined;
  return { iterations, salt, storedKey, serverKey };
}

/** RFC 5802 §3: SaltedPassword, then StoredKey = H(HMAC(SaltedPassword, "Client Key")) and ServerKey. */
export async function scramKeys(pw: Buffer, salt: Buffer, iterations: number): Promise<ScramKeys> {
  const salted = await pbkdf2Async(pw, salt, iterations);
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  return {
    iterations,
    salt,
    storedKey: createHash('sha256').update(clientKey).digest(),
    serverKey: createHmac('sha256', salted).update('Server Key').digest(),
  };
}

export function formatScramKeys(k: ScramKeys): string {
  return [k.iterations, k.salt.toString('base64'), k.storedKey.toString('base64'), k.serverKey.toString('base64')].join(',');
}

const scramScheme: Scheme = {
  async verify(encoded, pw) {
    const k = parseScramKeys(encoded);
    if (k === undefined) return false;
    const prepped = Buffer.from(saslprep(pw.toString('utf8')) ?? pw.toString('utf8'), 'utf8');
    return safeEqual((await scramKeys(prepped, k.salt, k.iterations)).storedKey, k.storedKey);
  },
};

/** MS-NLMP §3.3.1 NTOWFv1: MD4 of the UTF-16LE password, the "NT hash". */
export async function ntHash(password: string): Promise<Buffer> {
  const { md4 } = await hashWasm();
  return Buffer.from(await md4(Buffer.from(password, 'utf16le')), 'hex');
}

const ntlmScheme: Scheme = {
  async verify(encoded, pw) {
    if (!/^[0-9a-fA-F]{32}$/.test(encoded.trim())) return false;
    return safeEqual(await ntHash(pw.toString('utf8')), Buffer.from(encoded.trim(), 'hex'));
  },
};

/** DES and MD5 crypt (`{CRYPT}` without `$5$`, `$6$` or `$2…$`) are not verified: never a match. */
const NO_SCHEME: Scheme = { verify: async () => false };

/** Dovecot's schemes by upper-case name (poplar's own `{SCRYPT}` is added in password.ts). */
export const DOVECOT_SCHEMES: Readonly<Record<string, Scheme>> = {
  'SHA512-CRYPT': shaCryptScheme,
  'SHA256-CRYPT': shaCryptScheme,
  'BLF-CRYPT': bcryptScheme,
  // crypt(3) output as OpenLDAP and Dovecot store it: `{CRYPT}$6$…`, `$5$…`, `$2b$…` (R-X19).
  CRYPT: {
    verify: (encoded, pw) => (/^\$[56]\$/.test(encoded) ? shaCryptScheme : /^\$2[aby]\$/.test(encoded) ? bcryptScheme : NO_SCHEME).verify(encoded, pw),
  },
  ARGON2ID: argon2Scheme,
  ARGON2I: argon2Scheme,
  SSHA512: salted('sha512', 64),
  SSHA256: salted('sha256', 32),
  SSHA: salted('sha1', 20),
  SHA512: unsalted('sha512'),
  SHA256: unsalted('sha256'),
  SHA: unsalted('sha1'),
  SHA1: unsalted('sha1'),
  'PLAIN-MD5': unsalted('md5'),
  PLAIN: plain,
  CLEARTEXT: plain,
  'SCRAM-SHA-256': scramScheme,
  NTLM: ntlmScheme,
  'CRAM-MD5': {
    async verify(encoded, pw) {
      return /^[0-9a-fA-F]{64}$/.test(encoded.trim()) && safeEqual(cramContexts(pw), Buffer.from(encoded.trim(), 'hex'));
    },
  },
};

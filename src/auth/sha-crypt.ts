/**
 * SHA-crypt, the `$5$` (SHA-256) and `$6$` (SHA-512) password hashes of glibc's crypt(3), as
 * specified by Ulrich Drepper ("Unix crypt using SHA-256 and SHA-512", 2007). Dovecot stores them
 * as `{SHA256-CRYPT}` and `{SHA512-CRYPT}`. Pure: bytes in, the crypt string out.
 */
import { createHash } from 'node:crypto';

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const DEFAULT_ROUNDS = 5000;
const MIN_ROUNDS = 1000;
const MAX_ROUNDS = 999_999_999;
/** A stored hash asking for more rounds than this is refused: one login must stay cheap enough. */
export const MAX_STORED_ROUNDS = 5_000_000;

type Alg = 'sha256' | 'sha512';

/** `len` bytes made of `block` repeated. */
function repeat(block: Buffer, len: number): Buffer {
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i += block.length) block.copy(out, i, 0, Math.min(block.length, len - i));
  return out;
}

function digest(alg: Alg, parts: readonly Buffer[]): Buffer {
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Byte triples (first, second, third) encoded per 4 characters, in the order the spec fixes. */
function encode(alg: Alg, c: Buffer): string {
  let out = '';
  const b64 = (b2: number, b1: number, b0: number, n: number): void => {
    let w = (b2 << 16) | (b1 << 8) | b0;
    for (let i = 0; i < n; i++) {
      out += ITOA64[w & 0x3f];
      w >>= 6;
    }
  };
  if (alg === 'sha512') {
    for (let g = 0; g < 21; g++) {
      const [a, b, d] = [c[g]!, c[g + 21]!, c[g + 42]!];
      if (g % 3 === 0) b64(a, b, d, 4);
      else if (g % 3 === 1) b64(b, d, a, 4);
      else b64(d, a, b, 4);
    }
    b64(0, 0, c[63]!, 2);
  } else {
    for (let g = 0; g < 10; g++) {
      const [a, b, d] = [c[g]!, c[g + 10]!, c[g + 20]!];
      if (g % 3 === 0) b64(a, b, d, 4);
      else if (g % 3 === 1) b64(d, a, b, 4);
      else b64(b, d, a, 4);
    }
    b64(0, c[31]!, c[30]!, 3);
  }
  return out;
}

/** The full crypt string for `password`, e.g. `$6$rounds=10000$salt$hash`. */
export function shaCrypt(alg: Alg, password: Buffer, saltText: string, rounds?: number): string {
  const salt = Buffer.from(saltText.slice(0, 16), 'utf8');
  const r = rounds === undefined ? DEFAULT_ROUNDS : Math.min(Math.max(rounds, MIN_ROUNDS), MAX_ROUNDS);
  const p = password;
  const b = digest(alg, [p, salt, p]);
  const aParts: Buffer[] = [p, salt, repeat(b, p.length)];
  for (let n = p.length; n > 0; n >>= 1) aParts.push(n & 1 ? b : p);
  const a = digest(alg, aParts);
  const dp = digest(alg, Array.from({ length: p.length }, () => p));
  const pBytes = repeat(dp, p.length);
  const ds = digest(alg, Array.from({ length: 16 + a[0]! }, () => salt));
  const sBytes = repeat(ds, salt.length);
  let c = a;
  for (let i = 0; i < r; i++) {
    const parts: Buffer[] = [i & 1 ? pBytes : c];
    if (i % 3 !== 0) parts.push(sBytes);
    if (i % 7 !== 0) parts.push(pBytes);
    parts.push(i & 1 ? c : pBytes);
    c = digest(alg, parts);
  }
  const id = alg === 'sha512' ? '6' : '5';
  const roundsPart = rounds === undefined ? '' : `rounds=${r}$`;
  return `$${id}$${roundsPart}${salt.toString('utf8')}$${encode(alg, c)}`;
}

/** Parses `$5$[rounds=N$]salt$hash` or `$6$…`; undefined when malformed or too costly. */
export function parseShaCrypt(stored: string): { alg: Alg; salt: string; rounds: number | undefined } | undefined {
  const m = /^\$([56])\$(?:rounds=(\d{1,9})\$)?([^$]{0,16})\$([./0-9A-Za-z]+)$/.exec(stored);
  if (!m) return undefined;
  const rounds = m[2] === undefined ? undefined : Number(m[2]);
  if (rounds !== undefined && rounds > MAX_STORED_ROUNDS) return undefined;
  return { alg: m[1] === '6' ? 'sha512' : 'sha256', salt: m[3]!, rounds };
}

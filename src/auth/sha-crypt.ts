/**
 * SHA-crypt, the `$5$` (SHA-256) and `$6$` (SHA-512) password hashes of glibc's crypt(3), as
 * specified by Ulrich Drepper ("Unix crypt using SHA-256 and SHA-512", 2007). Dovecot stores them
 * as `{SHA256-CRYPT}` and `{SHA512-CRYPT}`. Pure: bytes in, the crypt string out.
 *
 * Speed matters here: the 5,000 default rounds run at every uncached password login. The server
 * path runs this function on worker threads (sha-crypt-pool.ts), not on the event loop; this
 * thread-agnostic version is also the fallback where workers cannot start. A `createHash` and
 * its Buffers per round cost twice as much and fed the GC (docs/benchmarks.md, login profile).
 * So the rounds reuse one hash-wasm (WASM) state per algorithm per thread
 * (`init()` per round, one `update()` of the round's input assembled in one scratch buffer), and
 * the P and S byte sequences are built once per hash (figures: bench/auth-login.ts). One hasher per thread is safe: a hash runs synchronously once started.
 */
// hash-wasm is imported when a hash is first made: parseShaCrypt's users (every `poplar` command) never load it.
import type { IHasher } from 'hash-wasm';

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const DEFAULT_ROUNDS = 5000;
const MIN_ROUNDS = 1000;
const MAX_ROUNDS = 999_999_999;
/** A stored hash asking for more rounds than this is refused: one login must stay cheap enough. */
export const MAX_STORED_ROUNDS = 5_000_000;
/** The spec uses at most 16 salt characters and ignores the rest. */
const MAX_SALT = 16;

export type ShaCryptAlg = 'sha256' | 'sha512';
type Alg = ShaCryptAlg;

let hashers: Promise<Record<Alg, IHasher>> | undefined;

/** The process's two WASM hashers, made on first use. */
function getHashers(): Promise<Record<Alg, IHasher>> {
  hashers ??= import('hash-wasm').then(({ createSHA256, createSHA512 }) => Promise.all([createSHA256(), createSHA512()]))
    .then(([sha256, sha512]) => ({ sha256, sha512 }));
  return hashers;
}

/** `len` bytes made of `block` repeated. */
function repeat(block: Uint8Array, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i += block.length) out.set(block.subarray(0, Math.min(block.length, len - i)), i);
  return out;
}

function digest(h: IHasher, parts: readonly Uint8Array[]): Uint8Array {
  h.init();
  for (const p of parts) h.update(p);
  return h.digest('binary');
}

/** Byte triples (first, second, third) encoded per 4 characters, in the order the spec fixes. */
function encode(alg: Alg, c: Uint8Array): string {
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

/**
 * Drepper's steps 21a–e: `rounds` times C = H([P|C] [S] [P] [C|P]). The round's input is
 * assembled in `buf` (the views of each possible length made once), so a round allocates only
 * the digest hash-wasm returns.
 */
function runRounds(h: IHasher, a: Uint8Array, pBytes: Uint8Array, sBytes: Uint8Array, rounds: number): Uint8Array {
  const dl = a.length;
  const pl = pBytes.length;
  const sl = sBytes.length;
  const buf = new Uint8Array(2 * dl + 2 * pl + sl);
  const views = new Map<number, Uint8Array>();
  const view = (n: number): Uint8Array => {
    let v = views.get(n);
    if (v === undefined) views.set(n, (v = buf.subarray(0, n)));
    return v;
  };
  let c = a;
  for (let i = 0; i < rounds; i++) {
    let n = 0;
    if (i & 1) {
      buf.set(pBytes, 0);
      n = pl;
    } else {
      buf.set(c, 0);
      n = dl;
    }
    if (i % 3 !== 0) {
      buf.set(sBytes, n);
      n += sl;
    }
    if (i % 7 !== 0) {
      buf.set(pBytes, n);
      n += pl;
    }
    if (i & 1) {
      buf.set(c, n);
      n += dl;
    } else {
      buf.set(pBytes, n);
      n += pl;
    }
    h.init();
    h.update(view(n));
    c = h.digest('binary');
  }
  return c;
}

/** The full crypt string for `password`, e.g. `$6$rounds=10000$salt$hash`. */
export async function shaCrypt(alg: Alg, password: Uint8Array, saltText: string, rounds?: number): Promise<string> {
  const h = (await getHashers())[alg];
  const salt = Buffer.from(saltText.slice(0, MAX_SALT), 'utf8');
  const r = rounds === undefined ? DEFAULT_ROUNDS : Math.min(Math.max(rounds, MIN_ROUNDS), MAX_ROUNDS);
  const p = password;
  const b = digest(h, [p, salt, p]);
  const aParts: Uint8Array[] = [p, salt, repeat(b, p.length)];
  for (let n = p.length; n > 0; n >>= 1) aParts.push(n & 1 ? b : p);
  const a = digest(h, aParts);
  const dp = digest(h, Array.from({ length: p.length }, () => p));
  const pBytes = repeat(dp, p.length);
  const ds = digest(h, Array.from({ length: 16 + a[0]! }, () => salt));
  const sBytes = repeat(ds, salt.length);
  const c = runRounds(h, a, pBytes, sBytes, r);
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

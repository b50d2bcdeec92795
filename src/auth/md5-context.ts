/**
 * HMAC-MD5 from precomputed contexts, as Dovecot's `{CRAM-MD5}` scheme stores a CRAM-MD5 secret
 * (RFC 2195 §3 suggests it): the MD5 states after the key XOR ipad and key XOR opad blocks, four
 * little-endian 32-bit words each, outer first (Dovecot's hmac_md5_get_cram_context), 64 hex
 * digits in all. With them the server computes HMAC-MD5(key, challenge) without the key. Node's
 * crypto cannot resume MD5 from a state, so the MD5 compression function (RFC 1321 §3.4) is here.
 */

const SHIFTS = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
/** RFC 1321 §3.4: T[i] = floor(2^32 · |sin(i + 1)|). */
const T = Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) >>> 0);
const IV = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];

type State = [number, number, number, number];

function compress(st: State, block: Buffer, off: number): State {
  let [a, b, c, d] = st;
  for (let i = 0; i < 64; i++) {
    let f: number;
    let g: number;
    if (i < 16) [f, g] = [(b & c) | (~b & d), i];
    else if (i < 32) [f, g] = [(d & b) | (~d & c), (5 * i + 1) % 16];
    else if (i < 48) [f, g] = [b ^ c ^ d, (3 * i + 5) % 16];
    else [f, g] = [c ^ (b | ~d), (7 * i) % 16];
    const x = (a + f + T[i]! + block.readUInt32LE(off + 4 * g)) >>> 0;
    const s = SHIFTS[(i >> 4) * 4 + (i % 4)]!;
    [a, d, c] = [d, c, b];
    b = (b + ((x << s) | (x >>> (32 - s)))) >>> 0;
  }
  return [(st[0] + a) >>> 0, (st[1] + b) >>> 0, (st[2] + c) >>> 0, (st[3] + d) >>> 0];
}

/** MD5 of (`prefix` octets already absorbed into `state`) ‖ `data`. */
function md5From(state: State, data: Buffer, prefix: number): Buffer {
  const total = prefix + data.length;
  const padLen = (55 - (data.length % 64) + 64) % 64;
  const msg = Buffer.concat([data, Buffer.from([0x80]), Buffer.alloc(padLen), Buffer.alloc(8)]);
  msg.writeUInt32LE((total * 8) >>> 0, msg.length - 8);
  msg.writeUInt32LE(Math.floor((total * 8) / 2 ** 32) >>> 0, msg.length - 4);
  let st = state;
  for (let off = 0; off < msg.length; off += 64) st = compress(st, msg, off);
  const out = Buffer.alloc(16);
  st.forEach((w, i) => out.writeUInt32LE(w, i * 4));
  return out;
}

const words = (buf: Buffer, at: number): State =>
  [buf.readUInt32LE(at), buf.readUInt32LE(at + 4), buf.readUInt32LE(at + 8), buf.readUInt32LE(at + 12)];

/** The 32-octet CRAM-MD5 contexts of `secret` (outer state, then inner state). */
export function cramContexts(secret: Buffer): Buffer {
  const key = Buffer.alloc(64);
  (secret.length > 64 ? md5From([...IV] as State, secret, 0) : secret).copy(key);
  const pad = (byte: number): Buffer => Buffer.from(key.map((k) => k ^ byte));
  const out = Buffer.alloc(32);
  compress([...IV] as State, pad(0x5c), 0).forEach((w, i) => out.writeUInt32LE(w, i * 4));
  compress([...IV] as State, pad(0x36), 0).forEach((w, i) => out.writeUInt32LE(w, 16 + i * 4));
  return out;
}

/** HMAC-MD5(key, message) from the key's contexts. */
export function hmacMd5FromContexts(contexts: Buffer, message: Buffer): Buffer {
  const inner = md5From(words(contexts, 16), message, 64);
  return md5From(words(contexts, 0), inner, 64);
}

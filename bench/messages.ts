/**
 * Deterministic test messages and Maildir seeding. A message is a function of (seed, id) only:
 * the same bytes are written into every server's Maildir, and the client regenerates them to
 * check what it receives. Each carries `X-Bench-Id: <id>` so it can be recognised whatever
 * message number a server gives it. Line endings vary by message (CRLF, LF, mixed per line) and
 * bodies contain lines starting with '.', lines that are only '.', and empty lines; there is no
 * bare CR and every message ends with a line ending, so the expected POP3 form is unambiguous.
 */
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Marks a Maildir the bench created, so re-seeding never deletes anyone else's mail. */
export const SEED_MARKER = 'poplar-bench-seeded';

/** mulberry32: a small, fast, seedable 32-bit PRNG; returns floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hashString(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

const ALPHABET = Buffer.from('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,;:-_=+!?()<>/');
/** 64 KiB of printable text that lines are cut from: cheap to slice, deterministic. */
const TEXT = (() => {
  const r = prng(1);
  const b = Buffer.alloc(65536);
  for (let i = 0; i < b.length; i++) b[i] = ALPHABET[Math.floor(r() * ALPHABET.length)]!;
  return b;
})();

/** The raw file bytes of message `id` of about `size` octets. */
export function makeMessage(seed: number, id: string, size: number): Buffer {
  const r = prng(hashString(`${seed}/${id}`));
  const mode = hashString(id) % 3; // 0: CRLF, 1: LF, 2: mixed per line
  const eol = (): string => (mode === 0 ? '\r\n' : mode === 1 ? '\n' : r() < 0.5 ? '\r\n' : '\n');
  const head = [
    'From: Bench Sender <sender@bench.example>',
    `To: ${id.split('-')[0]}@bench.example`,
    `Subject: bench message ${id}`,
    'Date: Sat, 21 Nov 2026 12:00:00 +0000',
    `Message-ID: <${id}.${seed}@bench.example>`,
    `X-Bench-Id: ${id}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
  ];
  const parts: Buffer[] = [];
  let len = 0;
  const push = (b: Buffer): void => {
    parts.push(b);
    len += b.length;
  };
  for (const h of head) push(Buffer.from(h + eol()));
  push(Buffer.from(eol()));
  while (len < size) {
    const x = r();
    if (x < 0.02) push(Buffer.from('.' + eol())); // a line that is only a dot
    else if (x < 0.04) push(Buffer.from(eol())); // an empty line
    else {
      const n = Math.floor(r() * 100);
      const at = Math.floor(r() * (TEXT.length - n));
      if (x < 0.1) push(Buffer.from(x < 0.07 ? '.' : '..'));
      push(TEXT.subarray(at, at + n));
      push(Buffer.from(eol()));
    }
  }
  return Buffer.concat(parts, len);
}

/** LF not preceded by CR becomes CRLF: the form a POP3 server sends (RFC 1939 §3). */
export function toCrlf(raw: Buffer): Buffer {
  const parts: Buffer[] = [];
  let from = 0;
  for (let i = raw.indexOf(10); i >= 0; i = raw.indexOf(10, i + 1)) {
    if (i > 0 && raw[i - 1] === 13) continue;
    parts.push(raw.subarray(from, i), CRLF);
    from = i + 1;
  }
  if (parts.length === 0) return raw;
  parts.push(raw.subarray(from));
  return Buffer.concat(parts);
}
const CRLF = Buffer.from('\r\n');

/** Removes dot-stuffing from a multi-line body (without its terminating ".\r\n"). */
export function unstuff(body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(body.length);
  let o = 0;
  let from = body[0] === 0x2e ? 1 : 0;
  for (let i = body.indexOf('\r\n.'); i >= 0; i = body.indexOf('\r\n.', i + 2)) {
    o += body.copy(out, o, from, i + 2);
    from = i + 3; // skip the stuffed dot
  }
  o += body.copy(out, o, from);
  return out.subarray(0, o);
}

/**
 * Dot-stuffs a CRLF message and appends the terminator: the exact bytes of a RETR reply's body
 * (RFC 1939 §3). `message` must end with CRLF (every bench message does).
 */
export function stuff(message: Buffer): Buffer {
  const parts: Buffer[] = [];
  let from = 0;
  if (message[0] === 0x2e) parts.push(DOT);
  for (let i = message.indexOf('\r\n.'); i >= 0; i = message.indexOf('\r\n.', i + 2)) {
    parts.push(message.subarray(from, i + 2), DOT);
    from = i + 2; // the line's own dot follows the added one
  }
  parts.push(message.subarray(from), DOT_LINE);
  return Buffer.concat(parts);
}
const DOT = Buffer.from('.');
const DOT_LINE = Buffer.from('.\r\n');

/** A message as a RETR reply carries it: its wire form, and its size as LIST gives it. */
export interface WireForm {
  readonly id: string;
  /** CRLF form, dot-stuffed, followed by ".\r\n". */
  readonly wire: Buffer;
  /** Octets of the CRLF form (what LIST and STAT count). */
  readonly octets: number;
}

/** The value of the X-Bench-Id header, or undefined. */
export function benchId(message: Buffer): string | undefined {
  const head = message.subarray(0, 2048).toString('latin1');
  return /^X-Bench-Id: (\S+)\r?$/m.exec(head)?.[1];
}

/** Expected POP3 form of messages, generated once per id. */
export class Expected {
  private readonly cache = new Map<string, Buffer>();
  private readonly wires = new Map<string, WireForm>();
  constructor(
    readonly seed: number,
    private readonly sizeOf: (id: string) => number,
  ) {}
  get(id: string): Buffer {
    let b = this.cache.get(id);
    if (b === undefined) {
      b = toCrlf(makeMessage(this.seed, id, this.sizeOf(id)));
      this.cache.set(id, b);
    }
    return b;
  }
  /** The wire form of message `id` (cached; the CRLF form is not kept for it). */
  wire(id: string): WireForm {
    let w = this.wires.get(id);
    if (w === undefined) {
      const crlf = this.cache.get(id) ?? toCrlf(makeMessage(this.seed, id, this.sizeOf(id)));
      w = { id, wire: stuff(crlf), octets: crlf.length };
      this.wires.set(id, w);
    }
    return w;
  }
}

export interface SeedOptions {
  /** Maildir root template, `%u` replaced by the user name. */
  readonly maildir: string;
  /** uid:gid to give the files (a server that runs as another user must own its mail). */
  readonly chown?: { uid: number; gid: number };
  /**
   * For a server that does not read these Maildirs (poplar on PostgreSQL): a command run once the
   * users' Maildirs are written, with `USER=MAILDIR` arguments appended; it must leave each
   * user's maildrop holding exactly that Maildir's messages (bench/compare/pg-seed.ts).
   */
  readonly hook?: readonly string[];
}

/** Runs the seeding hook (SeedOptions.hook) for these users; its last output line is the reason it failed. */
export function runSeedHook(opts: SeedOptions, users: readonly string[]): void {
  if (opts.hook === undefined || opts.hook.length === 0) return;
  const [cmd, ...args] = opts.hook;
  const r = spawnSync(cmd!, [...args, ...users.map((u) => `${u}=${opts.maildir.replaceAll('%u', u)}`)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) {
    const last = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n').pop() ?? '';
    throw new Error(`seeding hook ${cmd} failed (${r.error?.message ?? `exit ${r.status}`}): ${last}`);
  }
}

/**
 * Writes `ids` into a fresh Maildir of `user`, in new/, as a Postfix-style delivery would (no
 * size fields in the name, so the server sizes each file at first sight). An existing root is
 * replaced only if the bench made it (SEED_MARKER); otherwise seeding refuses.
 */
export function seedMaildir(opts: SeedOptions, user: string, ids: readonly string[], make: (id: string) => Buffer): void {
  const root = opts.maildir.replaceAll('%u', user);
  if (existsSync(root)) {
    if (!existsSync(join(root, SEED_MARKER))) throw new Error(`refusing to reseed ${root}: not made by the bench`);
    rmSync(root, { recursive: true, force: true });
  }
  const dirs = [root, join(root, 'new'), join(root, 'cur'), join(root, 'tmp')];
  for (const d of dirs) mkdirSync(d, { recursive: true });
  writeFileSync(join(root, SEED_MARKER), '');
  const t = 1763726400; // fixed seconds part keeps names (and their order) deterministic
  ids.forEach((id, i) => {
    const file = join(root, 'new', `${t + i}.M${i}P1.bench`);
    writeFileSync(file, make(id));
    if (opts.chown) chownSync(file, opts.chown.uid, opts.chown.gid);
  });
  if (opts.chown) for (const d of dirs) chownSync(d, opts.chown.uid, opts.chown.gid);
}

/**
 * The body of RETR and TOP (RFC 1939 §3, §7): stored bytes in, wire bytes out. Line ends become
 * CRLF by the rule of ./line-rule.ts (R-S19, R-K8), a line starting with "." gets another "." (byte
 * stuffing), TOP stops after the header block, the blank line and `topLines` body lines (R-K6),
 * and the reply ends with ".\r\n". This is the fast path of `wireBody` in ./line-rule.ts, where
 * the rule is written once as plain reference code; ./line-rule.test.ts checks every encoder here
 * (RETR, TOP, each workaround) and lacksEndOfHeaders against it in any chunking.
 * Pure: `bodyEncoder` takes the stored chunks one at a time and gives the wire chunks back (the session writes them, src/session/output.ts); `stuffBody` wraps
 * it as an async generator for a store that streams. When TOP has sent enough the encoder is
 * `done` and the caller stops reading the source early.
 * RETR (no TOP, no oe-ns-eoh) runs each chunk through ./body-transform.ts, a WebAssembly loop that
 * passes a chunk needing no change on untouched; TOP and oe-ns-eoh, which must count lines and
 * find the end of the header block, use the line loop below (Buffer.indexOf, copying only the
 * segments between line ends).
 *
 * R-X12 client workarounds (named after Dovecot's `pop3_client_workarounds`), off unless asked for:
 * - `outlook-no-nuls`: a NUL octet is sent as 0x80 (Outlook stops at NULs); same octet count.
 * - `oe-ns-eoh`: a message with no empty line, so no end of its header block, gets one empty line
 *   (CRLF) sent after its last line (Outlook Express and Netscape break without it); RETR and TOP.
 *   That is 2 octets more than the stored size: the session adds them to the sizes it reports
 *   (session/maildrop.ts, using lacksEndOfHeaders below), so R-S4 sizes stay exact.
 */
import { LINE_START, MID_LINE, transformChunk, type LineState } from './body-transform.js';
import { releaseChunk, type ChunkPool } from './chunk-pool.js';
import { TERMINATOR } from './response.js';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
const DOT_BUF = Buffer.from('.');
/** The end of a message whose last line has no line end (R-S19): its CRLF, then the terminator. */
const CRLF_TERMINATOR = Buffer.concat([CRLF, TERMINATOR]);

/** R-X12: the client workarounds stuffBody knows, as configured in `pop3.workarounds`. */
export const CLIENT_WORKAROUNDS = ['outlook-no-nuls', 'oe-ns-eoh'] as const;
export type ClientWorkaround = (typeof CLIENT_WORKAROUNDS)[number];

/** What `outlook-no-nuls` sends instead of a NUL octet. */
export const NUL_REPLACEMENT = 0x80;

export interface BodyOptions {
  /** TOP's line count; undefined for RETR (the whole message). */
  readonly topLines?: number | undefined;
  /** R-X12: the client workarounds in force (see above). */
  readonly workarounds?: readonly ClientWorkaround[] | undefined;
}

/** A copy of `chunk` with every NUL replaced (outlook-no-nuls); the chunk itself when it has none. */
function replaceNuls(chunk: Buffer): Buffer {
  let at = chunk.indexOf(0);
  if (at === -1) return chunk;
  const copy = Buffer.from(chunk);
  while (at !== -1) {
    copy[at] = NUL_REPLACEMENT;
    at = copy.indexOf(0, at + 1);
  }
  return copy;
}

/**
 * R-X12 `oe-ns-eoh`: whether a stored message has no empty line (by the line-end rule of
 * ./line-rule.ts: CRLF, bare LF and bare CR each end a line), i.e. its header block never ends — the
 * messages stuffBody adds an empty line to. Reads only up to the first empty line, so for a
 * usual message only its header block; returns early, which stops (and closes) the source.
 */
export async function lacksEndOfHeaders(source: AsyncIterable<Uint8Array>): Promise<boolean> {
  let atLineStart = true;
  let afterCr = false; // the previous octet was a CR: an LF now completes that CRLF
  for await (const chunk of source) {
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (afterCr) {
        afterCr = false;
        if (b === LF) continue;
      }
      if (b === CR || b === LF) {
        if (atLineStart) return false; // an empty line: the end of the header block
        atLineStart = true;
        afterCr = b === CR;
      } else {
        atLineStart = false;
      }
    }
  }
  return true;
}

/**
 * The body of one RETR or TOP reply, fed the stored message chunk by chunk, synchronously (the
 * session's send loop, session/output.ts, calls it between file reads; stuffBody below wraps it
 * for async iterables).
 */
export interface BodyEncoder {
  /**
   * The wire octets for the next stored chunk: the chunk itself when nothing had to change, or a
   * new buffer, taken from `pool` where the encoder can (RETR); undefined when there are none.
   * The input is handed over (protocol/chunk-pool.ts): a pooled input that was copied is given
   * back here, and the result is the caller's to hand on or give back.
   */
  chunk(input: Buffer, pool?: ChunkPool): Buffer | undefined;
  /** TOP has sent all it should: the rest of the message is not needed. */
  readonly done: boolean;
  /** The end of the reply: the last line's CRLF if it had none, and the terminator. */
  end(): Buffer;
}

/** An encoder for a RETR or TOP reply with these options. */
export function bodyEncoder(opts: BodyOptions = {}): BodyEncoder {
  const noNuls = opts.workarounds?.includes('outlook-no-nuls') === true;
  const addEoh = opts.workarounds?.includes('oe-ns-eoh') === true;
  return opts.topLines === undefined && !addEoh ? new RetrEncoder(noNuls) : new LineEncoder(opts.topLines, noNuls, addEoh);
}

/** RETR: no line counting, no header block to find; the WebAssembly loop (./body-transform.ts). */
class RetrEncoder implements BodyEncoder {
  private state: LineState = LINE_START;
  readonly done = false;

  constructor(private readonly noNuls: boolean) {}

  chunk(input: Buffer, pool?: ChunkPool): Buffer | undefined {
    const r = transformChunk(this.noNuls ? replaceNuls(input) : input, this.state, pool);
    this.state = r.state;
    // The source chunk was copied into the output: its (pooled) buffer can be reused.
    if (r.out.buffer !== input.buffer) releaseChunk(input);
    if (r.out.length > 0) return r.out;
    releaseChunk(r.out);
    return undefined;
  }

  end(): Buffer {
    return this.state === MID_LINE ? CRLF_TERMINATOR : TERMINATOR;
  }
}

/**
 * TOP and oe-ns-eoh, which must count lines and find the end of the header block: a line loop
 * (Buffer.indexOf, copying only the segments between line ends).
 */
class LineEncoder implements BodyEncoder {
  private atLineStart = true;
  private skipLf = false; // the previous chunk ended in CR, already emitted as CRLF
  private lineLen = 0; // octets of the current line so far (to find the empty line ending headers)
  private inHeaders = true;
  private bodyLines = 0;
  done = false;

  constructor(
    private readonly limit: number | undefined,
    private readonly noNuls: boolean,
    private readonly addEoh: boolean,
  ) {}

  chunk(view: Buffer): Buffer | undefined {
    if (this.done) return undefined;
    const limit = this.limit;
    // A NUL is none of CR, LF or ".", so replacing it first changes nothing else.
    const chunk = this.noNuls ? replaceNuls(view) : view;
    const out: Buffer[] = [];
    const n = chunk.length;
    let i = 0;
    // Cached positions of the next LF and CR, so each octet is scanned once per chunk.
    let lfAt = -2;
    let crAt = -2;
    if (this.skipLf && n > 0) {
      this.skipLf = false;
      if (chunk[0] === LF) i = 1;
    }
    while (i < n) {
      if (this.atLineStart) {
        if (limit !== undefined && !this.inHeaders) {
          if (this.bodyLines >= limit) {
            this.done = true;
            break;
          }
          this.bodyLines++;
        }
        if (chunk[i] === DOT) out.push(DOT_BUF);
        this.atLineStart = false;
      }
      if (lfAt !== -1 && lfAt < i) lfAt = chunk.indexOf(LF, i);
      if (crAt !== -1 && crAt < i) crAt = chunk.indexOf(CR, i);
      const end = lfAt === -1 ? crAt : crAt === -1 ? lfAt : Math.min(lfAt, crAt);
      if (end === -1) {
        out.push(chunk.subarray(i));
        this.lineLen += n - i;
        i = n;
        break;
      }
      if (end > i) out.push(chunk.subarray(i, end));
      out.push(CRLF);
      this.lineLen += end - i;
      if (this.inHeaders && this.lineLen === 0) this.inHeaders = false; // the empty line ends the header block
      this.lineLen = 0;
      this.atLineStart = true;
      if (chunk[end] === CR) {
        if (end + 1 < n) {
          i = chunk[end + 1] === LF ? end + 2 : end + 1;
        } else {
          this.skipLf = true;
          i = n;
        }
      } else {
        i = end + 1;
      }
    }
    // Copied: the segments point into the input, whose (pooled) buffer is given back now.
    const result = out.length === 0 ? undefined : Buffer.concat(out);
    releaseChunk(view);
    return result;
  }

  end(): Buffer {
    if (this.done) return TERMINATOR;
    const tail: Buffer[] = this.atLineStart ? [] : [CRLF];
    // R-X12 oe-ns-eoh: the header block never ended (no empty line): end it. TOP only stops early
    // once past the header block, so this is reached for TOP too.
    if (this.addEoh && this.inHeaders) tail.push(CRLF);
    tail.push(TERMINATOR);
    return tail.length === 1 ? tail[0]! : Buffer.concat(tail);
  }
}

/** The reply body over any async iterable of stored chunks; stops (and closes) the source early
 * once TOP has sent enough. Changed chunks are written into buffers of `pool` if given. */
export async function* stuffBody(
  source: AsyncIterable<Uint8Array>,
  opts: BodyOptions = {},
  pool?: ChunkPool,
): AsyncGenerator<Buffer, void, undefined> {
  const encoder = bodyEncoder(opts);
  for await (const raw of source) {
    const out = encoder.chunk(Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.length), pool);
    if (out !== undefined) yield out;
    if (encoder.done) break;
  }
  yield encoder.end();
}

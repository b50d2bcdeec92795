/**
 * THE line-end rule of poplar, written once as plain reference code (R-S19, R-K8, R-S4, R-K6,
 * RFC 1939 §3). Every other place that splits stored mail into lines is a fast path of these
 * functions and is tested against them (./line-rule.test.ts: random bytes, whole and cut at
 * random chunk boundaries):
 *
 * - ./crlf.ts `CrlfSizer`, `crlfSize`: `canonicalSize` (the size STAT, LIST and a Maildir file
 *   name's `,W=` report), incrementally;
 * - ./body-transform.ts `jsTransform` and the WebAssembly loop of ./body-transform-wasm.ts: RETR's
 *   `wireBody`, chunk by chunk;
 * - ./dot-stuffing.ts `LineEncoder` (TOP, `oe-ns-eoh`) and `lacksEndOfHeaders`;
 * - ../migrate/headers.ts, which reads the header block with `storedLines` itself.
 *
 * The rule: a stored message is a sequence of lines, each ended by CR LF, by a bare LF or by a
 * bare CR (a CR not followed by an LF); a last line with no line end is a line too. Each line is
 * served followed by CR LF, so CR LF stays, a bare LF or a bare CR becomes CR LF, and a missing
 * final line end is added; an empty message has no lines. On the wire a line that starts with "."
 * gets another "." (byte stuffing), and the reply ends with ".\r\n". R-S4's size is that of the
 * lines with their CR LFs, before stuffing. These functions favour being obviously right over
 * speed: they copy every line.
 */
import type { ClientWorkaround } from './dot-stuffing.js';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
const DOT_LINE_PREFIX = Buffer.from('.');
const TERMINATOR = Buffer.from('.\r\n');

/** The lines of a stored message by the rule above, each without its line end. */
export function* storedLines(stored: Uint8Array): Generator<Buffer> {
  const bytes = Buffer.from(stored.buffer, stored.byteOffset, stored.length);
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b !== CR && b !== LF) continue;
    yield bytes.subarray(start, i);
    if (b === CR && bytes[i + 1] === LF) i++; // CR LF is one line end
    start = i + 1;
  }
  if (start < bytes.length) yield bytes.subarray(start); // a last line without a line end
}

/** The stored message as CRLF lines, before stuffing. */
export function canonical(stored: Uint8Array): Buffer {
  const out: Buffer[] = [];
  for (const line of storedLines(stored)) out.push(line, CRLF);
  return Buffer.concat(out);
}

/** R-S4: the size STAT and LIST report (and Maildir's `,W=`): the octets of `canonical`. */
export function canonicalSize(stored: Uint8Array): number {
  return canonical(stored).length;
}

/** Whether the message has an empty line, i.e. an end of its header block. */
export function hasEndOfHeaders(stored: Uint8Array): boolean {
  for (const line of storedLines(stored)) if (line.length === 0) return true;
  return false;
}

export interface WireOptions {
  /** TOP's line count (R-K6); undefined for RETR. */
  readonly topLines?: number | undefined;
  /** R-X12 workarounds (dot-stuffing.ts). */
  readonly workarounds?: readonly ClientWorkaround[] | undefined;
}

/**
 * The octets of a RETR or TOP reply's body (after the status line): the lines (for TOP the header
 * block, the empty line and at most `topLines` lines after it), each with CR LF and stuffed, then
 * the terminator. `outlook-no-nuls` sends each NUL as 0x80; `oe-ns-eoh` adds an empty line after
 * the last one when the message has none.
 */
export function wireBody(stored: Uint8Array, opts: WireOptions = {}): Buffer {
  let lines = [...storedLines(stored)];
  const blank = lines.findIndex((l) => l.length === 0);
  if (opts.topLines !== undefined && blank !== -1) lines = lines.slice(0, blank + 1 + opts.topLines);
  if (opts.workarounds?.includes('outlook-no-nuls') === true) lines = lines.map((l) => Buffer.from(l.map((b) => (b === 0 ? 0x80 : b))));
  if (opts.workarounds?.includes('oe-ns-eoh') === true && blank === -1) lines.push(Buffer.alloc(0));
  const out: Buffer[] = [];
  for (const line of lines) {
    if (line[0] === DOT) out.push(DOT_LINE_PREFIX);
    out.push(line, CRLF);
  }
  out.push(TERMINATOR);
  return Buffer.concat(out);
}

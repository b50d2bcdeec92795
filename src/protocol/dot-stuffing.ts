/**
 * The body of RETR and TOP (RFC 1939 §3, §7): stored bytes in, wire bytes out. Line ends become
 * CRLF by the rule of ./crlf.ts (R-S19, R-K8), a line starting with "." gets another "." (byte
 * stuffing), TOP stops after the header block, the blank line and `topLines` body lines (R-K6),
 * and the reply ends with ".\r\n". Pure: an async generator over any async iterable of chunks;
 * when TOP has sent enough it returns, which stops (and closes) the source early.
 * Scans with Buffer.indexOf; copies only the segments between line ends.
 */
import { TERMINATOR } from './response.js';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
const DOT_BUF = Buffer.from('.');

export interface BodyOptions {
  /** TOP's line count; undefined for RETR (the whole message). */
  readonly topLines?: number | undefined;
}

export async function* stuffBody(
  source: AsyncIterable<Uint8Array>,
  opts: BodyOptions = {},
): AsyncGenerator<Buffer, void, undefined> {
  const limit = opts.topLines;
  let atLineStart = true;
  let skipLf = false; // the previous chunk ended in CR, already emitted as CRLF
  let lineLen = 0; // octets of the current line so far (to find the empty line ending headers)
  let inHeaders = true;
  let bodyLines = 0;
  let done = false;

  for await (const raw of source) {
    const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.length);
    const out: Buffer[] = [];
    const n = chunk.length;
    let i = 0;
    // Cached positions of the next LF and CR, so each octet is scanned once per chunk.
    let lfAt = -2;
    let crAt = -2;
    if (skipLf && n > 0) {
      skipLf = false;
      if (chunk[0] === LF) i = 1;
    }
    while (i < n) {
      if (atLineStart) {
        if (limit !== undefined && !inHeaders) {
          if (bodyLines >= limit) {
            done = true;
            break;
          }
          bodyLines++;
        }
        if (chunk[i] === DOT) out.push(DOT_BUF);
        atLineStart = false;
      }
      if (lfAt !== -1 && lfAt < i) lfAt = chunk.indexOf(LF, i);
      if (crAt !== -1 && crAt < i) crAt = chunk.indexOf(CR, i);
      const end = lfAt === -1 ? crAt : crAt === -1 ? lfAt : Math.min(lfAt, crAt);
      if (end === -1) {
        out.push(chunk.subarray(i));
        lineLen += n - i;
        i = n;
        break;
      }
      if (end > i) out.push(chunk.subarray(i, end));
      out.push(CRLF);
      lineLen += end - i;
      if (inHeaders && lineLen === 0) inHeaders = false; // the empty line ends the header block
      lineLen = 0;
      atLineStart = true;
      if (chunk[end] === CR) {
        if (end + 1 < n) {
          i = chunk[end + 1] === LF ? end + 2 : end + 1;
        } else {
          skipLf = true;
          i = n;
        }
      } else {
        i = end + 1;
      }
    }
    if (done) {
      out.push(TERMINATOR);
      yield Buffer.concat(out);
      return;
    }
    if (out.length > 0) yield out.length === 1 ? out[0]! : Buffer.concat(out);
  }
  yield atLineStart ? TERMINATOR : Buffer.concat([CRLF, TERMINATOR]);
}

/**
 * Incremental command-line framing (RFC 1939 §3: commands end with CRLF). Pure: bytes in, lines
 * out. Lines are pulled one at a time with `next()`, so the caller decides how many to take and
 * the reader holds at most the unconsumed bytes of what it was given (the session pauses the
 * socket while `buffered` is large). A bare LF is accepted as a line end and a CR before the LF is
 * stripped. A line longer than `maxLength` octets (CRLF included, R-S2) is never buffered whole:
 * the reader reports `too-long` once and discards input up to the next LF.
 */

export type LineEvent = { readonly kind: 'line'; readonly line: Buffer } | { readonly kind: 'too-long' };

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);

export class LineReader {
  private buf: Buffer = EMPTY;
  private pos = 0;
  /** Inside an over-long line: drop bytes until the next LF. */
  private discarding = false;

  constructor(private maxLength: number) {}

  /** Changes the limit for lines not yet framed (settings reload). */
  setMaxLength(maxLength: number): void {
    this.maxLength = maxLength;
  }

  /** Octets held and not yet returned as lines. */
  get buffered(): number {
    return this.buf.length - this.pos;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.pos >= this.buf.length) {
      this.buf = chunk;
    } else {
      this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk]);
    }
    this.pos = 0;
  }

  /** The next framed line or too-long event, or undefined when more input is needed. */
  next(): LineEvent | undefined {
    for (;;) {
      const lf = this.buf.indexOf(LF, this.pos);
      if (this.discarding) {
        if (lf === -1) {
          this.buf = EMPTY;
          this.pos = 0;
          return undefined;
        }
        this.pos = lf + 1;
        this.discarding = false;
        continue;
      }
      if (lf === -1) {
        if (this.buf.length - this.pos >= this.maxLength) {
          // Even with its LF still to come this line exceeds the limit: report it now, drop it.
          this.buf = EMPTY;
          this.pos = 0;
          this.discarding = true;
          return { kind: 'too-long' };
        }
        return undefined;
      }
      const start = this.pos;
      this.pos = lf + 1;
      if (lf + 1 - start > this.maxLength) return { kind: 'too-long' };
      const end = lf > start && this.buf[lf - 1] === CR ? lf - 1 : lf;
      // Copy so the line does not pin a large socket chunk in memory.
      return { kind: 'line', line: Buffer.from(this.buf.subarray(start, end)) };
    }
  }
}

/**
 * The size of a stored message served as CRLF lines (R-S4: what STAT and LIST report, and a
 * Maildir file name's `,W=`), counted without building the lines: the fast path of
 * `canonicalSize` in ./line-rule.ts, where the rule is written once (CRLF stays, a bare LF or a
 * bare CR becomes CRLF, a last line without a line end gets one, an empty message stays empty)
 * and line-rule.test.ts checks this against it in any chunking.
 */

const CR = 0x0d;
const LF = 0x0a;

/** Incremental counter of the canonical (CRLF) size of a byte stream fed in any chunks. */
export class CrlfSizer {
  private size = 0;
  /** The last byte seen was a CR whose partner (LF or not) has not been seen yet. */
  private pendingCr = false;
  /** Last byte seen, or -1 before any byte. */
  private last = -1;

  /** Counts with Buffer.indexOf: every octet once, plus one for each bare LF and each bare CR. */
  push(chunk: Uint8Array): void {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    const n = buf.length;
    if (n === 0) return;
    let extra = 0;
    if (this.pendingCr) {
      // The CR that ended the previous chunk is bare unless this chunk starts with its LF.
      if (buf[0] !== LF) extra++;
      this.pendingCr = false;
    }
    for (let i = buf.indexOf(LF); i !== -1; i = buf.indexOf(LF, i + 1)) {
      const afterCr = i > 0 ? buf[i - 1] === CR : this.last === CR;
      if (!afterCr) extra++; // a bare LF becomes CRLF
    }
    for (let i = buf.indexOf(CR); i !== -1; i = buf.indexOf(CR, i + 1)) {
      if (i + 1 === n) this.pendingCr = true; // decided by the next chunk, or by total()
      else if (buf[i + 1] !== LF) extra++; // a bare CR becomes CRLF
    }
    this.size += n + extra;
    this.last = buf[n - 1]!;
  }

  /** The canonical size of everything pushed, as if the stream ended now. */
  total(): number {
    let s = this.size;
    if (this.pendingCr) s += 1; // a final bare CR becomes CRLF
    else if (this.last !== -1 && this.last !== LF) s += 2; // no final line end: CRLF is added
    return s;
  }
}

/** The canonical size of a whole buffer. */
export function crlfSize(data: Uint8Array): number {
  const s = new CrlfSizer();
  s.push(data);
  return s.total();
}

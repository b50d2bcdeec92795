/**
 * The canonical line-end rule of R-S19 / R-K8, in one place: a stored message is served as CRLF
 * lines. CRLF stays, a bare LF or a bare CR becomes CRLF, and a last line without a line end gets
 * one. An empty message stays empty. `CrlfSizer` counts the octets that rule produces (R-S4: the
 * size STAT and LIST report); `protocol/dot-stuffing.ts` produces the same octets, then stuffs.
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

  push(chunk: Uint8Array): void {
    const n = chunk.length;
    if (n === 0) return;
    let i = 0;
    if (this.pendingCr) {
      // The CR from the previous chunk: CRLF if this chunk starts with LF, else a bare CR (+1).
      this.pendingCr = false;
      if (chunk[0] === LF) {
        this.size += 1;
        i = 1;
      } else {
        this.size += 1;
      }
    }
    for (; i < n; i++) {
      const b = chunk[i]!;
      if (b === LF) {
        this.size += 2; // bare LF becomes CRLF (a CRLF's LF is consumed with its CR below)
      } else if (b === CR) {
        this.size += 1;
        if (i + 1 < n) {
          if (chunk[i + 1] === LF) {
            this.size += 1;
            i++;
          } else {
            this.size += 1; // bare CR becomes CRLF
          }
        } else {
          this.pendingCr = true;
        }
      } else {
        this.size += 1;
      }
    }
    this.last = chunk[n - 1]!;
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

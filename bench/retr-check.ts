/**
 * Checks one RETR reply as its bytes arrive, without buffering the message: the status line must
 * be +OK, the X-Bench-Id header names the message, and from then on every received byte must
 * equal the next byte of that message's expected wire form (CRLF line endings, dot-stuffed, then
 * ".\r\n": Expected.wire). Comparing the wire form byte for byte is the same check as
 * "dot-unstuffed body equals the CRLF form": stuffing is a function of the message, so a wrong
 * byte, a missing or extra stuffed dot, a short or long body and a wrong or missing terminator
 * all differ from it. The message's unstuffed length must equal the LIST size given. One memcmp
 * per received chunk against the matching slice; no copy but the first HEAD_MAX bytes.
 */
import type { WireForm } from './messages.js';

const HEAD_MAX = 2048; // the id header is within the first ~300 bytes of every bench message
const ID_AT = Buffer.from('\nX-Bench-Id: ');
const STATUS_MAX = 512;

const enum Phase {
  Status,
  Head,
  Body,
  Done,
}

export class RetrCheck {
  private phase = Phase.Done;
  private readonly status = Buffer.allocUnsafe(STATUS_MAX);
  private statusLen = 0;
  private readonly head = Buffer.allocUnsafe(HEAD_MAX);
  private headLen = 0;
  private wire: Buffer = Buffer.alloc(0);
  private pos = 0;
  private label = '';
  private listOctets = 0;
  /** The message identified, once the header has been read. */
  expected: WireForm | undefined;

  constructor(private readonly lookup: (id: string) => WireForm | undefined) {}

  /** Starts checking the reply to a RETR whose message LIST sized `listOctets`. */
  reset(label: string, listOctets: number): void {
    this.phase = Phase.Status;
    this.statusLen = 0;
    this.headLen = 0;
    this.pos = 0;
    this.label = label;
    this.listOctets = listOctets;
    this.expected = undefined;
  }

  get done(): boolean {
    return this.phase === Phase.Done;
  }

  /**
   * Consumes bytes of `c` from `off` and returns the offset after the last byte consumed (the
   * reply's end, or c.length). Throws at the first byte that is not as expected. The caller may
   * reuse `c` afterwards: nothing keeps a reference to it.
   */
  feed(c: Buffer, off = 0): number {
    while (off < c.length && this.phase !== Phase.Done) {
      if (this.phase === Phase.Status) off = this.feedStatus(c, off);
      else if (this.phase === Phase.Head) off = this.feedHead(c, off);
      else off = this.feedBody(c, off);
    }
    return off;
  }

  private feedStatus(c: Buffer, off: number): number {
    const lf = c.indexOf(10, off);
    const end = lf < 0 ? c.length : lf + 1;
    if (this.statusLen + end - off > STATUS_MAX) throw new Error(`${this.label}: status line longer than ${STATUS_MAX} octets`);
    this.statusLen += c.copy(this.status, this.statusLen, off, end);
    if (lf < 0) return end;
    const line = this.status.toString('latin1', 0, this.statusLen);
    if (!line.startsWith('+OK')) throw new Error(`server said: ${line.trim()}`);
    if (!line.endsWith('\r\n')) throw new Error(`${this.label}: status line not ended by CRLF`);
    this.phase = Phase.Head;
    return end;
  }

  /** Collects the first bytes until the id header is complete, then checks them like the body. */
  private feedHead(c: Buffer, off: number): number {
    const take = Math.min(c.length - off, HEAD_MAX - this.headLen);
    this.headLen += c.copy(this.head, this.headLen, off, off + take);
    const h = this.head.subarray(0, this.headLen);
    const at = h.indexOf(ID_AT);
    const eol = at < 0 ? -1 : h.indexOf('\r\n', at + ID_AT.length);
    if (eol < 0) {
      // No id yet: give up once it can no longer come (header or reply over, or too far in).
      if (this.headLen === HEAD_MAX || h.indexOf('\r\n\r\n') >= 0 || h.indexOf('\r\n.\r\n') >= 0 || (h.length >= 3 && h.subarray(0, 3).equals(DOT_LINE)))
        throw new Error(`${this.label}: no X-Bench-Id header in the first ${this.headLen} octets`);
      return off + take;
    }
    const id = h.toString('latin1', at + ID_AT.length, eol);
    const e = this.lookup(id);
    if (e === undefined) throw new Error(`${this.label}: unknown message ${id}`);
    if (e.octets !== this.listOctets) throw new Error(`${this.label}: message ${id} has ${e.octets} octets, LIST said ${this.listOctets}`);
    this.expected = e;
    this.wire = e.wire;
    this.label = `${this.label} (message ${id})`;
    this.phase = Phase.Body;
    // The collected bytes are checked as body bytes; anything past the reply's end is an error too.
    const n = Math.min(this.headLen, this.wire.length);
    if (h.compare(this.wire, 0, n, 0, n) !== 0) this.mismatch(h, 0, 0, n);
    if (this.headLen > this.wire.length) throw new Error(`${this.label}: ${this.headLen - this.wire.length} octets after the terminator`);
    this.pos = n;
    if (this.pos === this.wire.length) this.phase = Phase.Done;
    return off + take;
  }

  private feedBody(c: Buffer, off: number): number {
    const n = Math.min(c.length - off, this.wire.length - this.pos);
    if (c.compare(this.wire, this.pos, this.pos + n, off, off + n) !== 0) this.mismatch(c, off, this.pos, n);
    this.pos += n;
    if (this.pos === this.wire.length) this.phase = Phase.Done;
    return off + n;
  }

  /** Throws, naming the first differing octet (only ever called once a slice differs). */
  private mismatch(c: Buffer, off: number, pos: number, n: number): never {
    let i = 0;
    while (i < n && c[off + i] === this.wire[pos + i]) i++;
    const at = pos + i;
    const show = (b: Buffer, from: number): string => JSON.stringify(b.toString('latin1', Math.max(0, from - 8), from + 8));
    throw new Error(
      `${this.label}: differs from the message as seeded at wire octet ${at} of ${this.wire.length}: got ${show(c, off + i)}, expected ${show(this.wire, at)}`,
    );
  }
}

const DOT_LINE = Buffer.from('.\r\n');

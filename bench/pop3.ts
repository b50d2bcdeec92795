/**
 * A minimal POP3 client for load generation (RFC 1939): one command at a time, replies read
 * from a chunk list, multi-line replies found by their CRLF "." CRLF end. Every -ERR, unexpected
 * close or timeout rejects, so a scenario never counts a failed step.
 *
 * Plain TCP reads into one reused receive buffer per connection (net `onread`): bytes a reply
 * reader needs later are copied out, and a checked RETR (retrChecked) compares them where they
 * lie, so receiving a message allocates nothing per chunk. TLS sockets use 'data' events.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { unstuff } from './messages.js';
import type { RetrCheck } from './retr-check.js';

export interface Target {
  readonly host: string;
  readonly port: number;
  /** Implicit TLS (POP3S); certificates are not checked (self-signed bench certificates). */
  readonly tls?: boolean;
  /** Inactivity limit in ms before the client gives up (default 60 s); 0: none (held sessions). */
  readonly timeoutMs?: number;
}

const END = Buffer.from('\r\n.\r\n');
const TIMEOUT_MS = 60_000;
/** Receive buffer of a plain TCP connection: one read(2) of up to this many bytes per callback. */
const RECV_BUFFER = 256 * 1024;
/** Receive buffers of closed connections, reused by the next ones. */
const freeBuffers: Buffer[] = [];
const MAX_FREE_BUFFERS = 256;

export class Pop3Client {
  private chunks: Buffer[] = [];
  private waiter: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  /** While set, received bytes go to this check rather than to `chunks`. */
  private sink: RetrCheck | undefined;

  private constructor(private readonly socket: Socket, timeoutMs: number) {
    const fail = (e: Error): void => {
      this.failure ??= e;
      this.wake();
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed by server')));
    if (timeoutMs > 0) socket.setTimeout(timeoutMs, () => socket.destroy(new Error('timeout')));
  }

  /** Connects and reads the greeting. */
  static async open(t: Target): Promise<Pop3Client> {
    let c: Pop3Client | undefined;
    let socket: Socket;
    if (t.tls) {
      socket = tlsConnect({ host: t.host, port: t.port, rejectUnauthorized: false });
      socket.on('data', (b: Buffer) => c!.received(b, false));
    } else {
      const buffer = freeBuffers.pop() ?? Buffer.allocUnsafe(RECV_BUFFER);
      socket = netConnect({
        host: t.host,
        port: t.port,
        onread: {
          buffer,
          callback: (n: number, b: Uint8Array): boolean => {
            c!.received(b === buffer ? buffer.subarray(0, n) : Buffer.from(b.buffer, b.byteOffset, n), true);
            return true;
          },
        },
      });
      // No read lands in it once the socket closed (what it held was copied out): the next
      // connection takes it, instead of a fresh 256 KiB allocation per session (a login loop
      // made hundreds a second, and V8 answered the external memory with full collections).
      socket.once('close', () => {
        if (freeBuffers.length < MAX_FREE_BUFFERS) freeBuffers.push(buffer);
      });
    }
    socket.setNoDelay(true);
    c = new Pop3Client(socket, t.timeoutMs ?? TIMEOUT_MS);
    await c.status();
    return c;
  }

  /** Bytes from the socket; `transient`: `b` is the reused receive buffer, so keep only copies. */
  private received(b: Buffer, transient: boolean): void {
    let off = 0;
    if (this.sink !== undefined) {
      try {
        off = this.sink.feed(b);
      } catch (err) {
        this.failure ??= err as Error;
        this.socket.destroy();
      }
      if (this.sink.done || this.failure !== undefined) {
        this.sink = undefined;
        this.wake();
      }
      if (off === b.length || this.failure !== undefined) return;
    }
    const c = transient ? Buffer.from(b.subarray(off)) : b.subarray(off);
    // A tiny chunk joins the one before it, so a delimiter spans at most two chunks.
    const last = this.chunks.length - 1;
    if (c.length < 8 && last >= 0) this.chunks[last] = Buffer.concat([this.chunks[last]!, c]);
    else this.chunks.push(c);
    this.wake();
  }

  async login(user: string, password: string): Promise<void> {
    await this.command(`USER ${user}`);
    await this.command(`PASS ${password}`);
  }

  /** Sends a line, returns the reply line as it is (a SASL `+ …` challenge, `+OK` or `-ERR`), without judging it. */
  async line(text: string): Promise<string> {
    this.socket.write(`${text}\r\n`);
    return (await this.until(CRLF, false)).toString('latin1');
  }

  /** Sends a command, returns the text after "+OK". */
  async command(line: string): Promise<string> {
    this.socket.write(`${line}\r\n`);
    return this.status();
  }

  async stat(): Promise<{ count: number; octets: number }> {
    const [count, octets] = (await this.command('STAT')).trim().split(' ').map(Number);
    return { count: count!, octets: octets! };
  }

  /** A multi-line command: the body without dot-unstuffing and without the final ".\r\n". */
  async multi(line: string): Promise<Buffer> {
    await this.command(line);
    return this.until(END, true);
  }

  /** RETR n: the message as sent, dot-unstuffed (CRLF line endings). */
  async retr(n: number): Promise<Buffer> {
    return unstuff(await this.multi(`RETR ${n}`));
  }

  /**
   * RETR n, checked by `check` (already reset for this message) as the bytes arrive; the reply is
   * not kept. Resolves once the whole reply matched, rejects at the first difference.
   */
  async retrChecked(n: number, check: RetrCheck): Promise<void> {
    this.sink = check;
    // Bytes already here (there should be none: one command at a time) are checked first.
    const early = this.chunks;
    this.chunks = [];
    for (const c of early) if (this.sink !== undefined) this.received(c, false);
    this.socket.write(`RETR ${n}\r\n`);
    while (!check.done) {
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve, reject) => (this.waiter = { resolve, reject }));
    }
  }

  /** Sends QUIT, reads +OK and waits for the server to close, so TIME_WAIT stays server-side. */
  async quit(): Promise<void> {
    await this.command('QUIT');
    await new Promise<void>((resolve) => {
      if (this.socket.readableEnded || this.socket.destroyed) resolve();
      else this.socket.once('close', () => resolve());
      this.socket.resume();
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private async status(): Promise<string> {
    const line = (await this.until(CRLF, false)).toString('latin1');
    if (!line.startsWith('+OK')) throw new Error(`server said: ${line.trim()}`);
    return line.slice(3);
  }

  /**
   * Bytes up to `delim` (exclusive) from the buffered chunks, waiting for more as needed. With
   * `afterLine`, the CRLF that ended the status line counts as the start of `delim`, so an empty
   * multi-line body (".\r\n" right after the status line) is found too.
   */
  private async until(delim: Buffer, afterLine: boolean): Promise<Buffer> {
    let scanned = 0; // chunks fully searched already
    let seen = 0; // bytes in those chunks
    for (;;) {
      if (afterLine && scanned === 0) {
        const head = this.chunks.length > 1 ? Buffer.concat(this.chunks.slice(0, 2)) : this.chunks[0];
        if (head !== undefined && head.length >= 3 && head.subarray(0, 3).equals(DOT_LINE)) {
          this.take(3);
          return Buffer.alloc(0);
        }
      }
      const found = this.find(delim, scanned, seen);
      if (found >= 0) {
        const out = this.take(found + delim.length);
        return out.subarray(0, afterLine ? found + 2 : found); // keep the last line's CRLF
      }
      // Everything but the last chunk is searched; the boundary is covered by the overlap check.
      scanned = Math.max(0, this.chunks.length - 1);
      seen = this.chunks.slice(0, scanned).reduce((s, c) => s + c.length, 0);
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve, reject) => (this.waiter = { resolve, reject }));
    }
  }

  /** Offset of `delim` in the buffered bytes, searching from chunk `from` (at byte `base`). */
  private find(delim: Buffer, from: number, base: number): number {
    let offset = base;
    for (let i = from; i < this.chunks.length; i++) {
      const c = this.chunks[i]!;
      const at = c.indexOf(delim);
      if (at >= 0) return offset + at;
      const next = this.chunks[i + 1];
      if (next !== undefined) {
        // delim split across chunks: search the seam
        const k = delim.length - 1;
        const seam = Buffer.concat([c.subarray(Math.max(0, c.length - k)), next.subarray(0, k)]);
        const s = seam.indexOf(delim);
        if (s >= 0) return offset + c.length - Math.min(k, c.length) + s;
      }
      offset += c.length;
    }
    return -1;
  }

  /** Removes and returns the first n buffered bytes. */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) {
      this.chunks[0] = first.subarray(n);
      if (this.chunks[0].length === 0) this.chunks.shift();
      return first.subarray(0, n);
    }
    const all = Buffer.concat(this.chunks);
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    return all.subarray(0, n);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.resolve();
  }
}

const CRLF = Buffer.from('\r\n');
const DOT_LINE = Buffer.from('.\r\n');

/**
 * A scripted POP3 client over a raw socket: send any bytes, read status lines and multi-line
 * replies exactly as they arrived (nothing normalised), and observe the server closing.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { once } from 'node:events';

export interface MultiLine {
  readonly status: string;
  /** Lines between the status and the terminator, still dot-stuffed, without CRLF. */
  readonly lines: string[];
  /** The body bytes exactly as received after the status line, terminator included. */
  readonly raw: Buffer;
}

export class Pop3Client {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private ended = false;
  readonly greeting: Promise<string>;

  private readonly onData = (d: Buffer): void => {
    this.buf = Buffer.concat([this.buf, d]);
    this.wake();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.wake();
  };
  private readonly onError = (): void => undefined;

  private constructor(public socket: Socket) {
    this.listen(socket);
    this.greeting = this.line();
  }

  private listen(socket: Socket): void {
    socket.on('data', this.onData).on('end', this.onEnd).on('close', this.onEnd).on('error', this.onError);
  }

  /** Connects with implicit TLS (POP3S); the test certificate is self-signed, so it is not verified. */
  static async connectTls(port: number, opts: ConnectionOptions = {}): Promise<Pop3Client> {
    const socket = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...opts });
    await once(socket, 'secureConnect');
    const c = new Pop3Client(socket);
    await c.greeting;
    return c;
  }

  /**
   * After a `+OK` to STLS: the TLS handshake on this connection (RFC 2595). Bytes received in
   * plaintext and not yet read are dropped, as a careful client does.
   */
  async upgrade(opts: ConnectionOptions = {}): Promise<TLSSocket> {
    const plain = this.socket;
    plain.off('data', this.onData).off('end', this.onEnd).off('close', this.onEnd);
    this.buf = Buffer.alloc(0);
    const secure = tlsConnect({ socket: plain, rejectUnauthorized: false, ...opts });
    await once(secure, 'secureConnect');
    this.socket = secure;
    this.listen(secure);
    return secure;
  }

  /** `localAddress`: the address to connect from (another loopback address, 127.0.0.2, for a second client address). */
  static async connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<Pop3Client> {
    const socket = connect({ port, host, ...(localAddress === undefined ? {} : { localAddress }) });
    await once(socket, 'connect');
    const c = new Pop3Client(socket);
    await c.greeting;
    return c;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private async waitData(timeoutMs: number): Promise<void> {
    if (this.ended) throw new Error(`connection closed; unread: ${JSON.stringify(this.buf.toString('latin1'))}`);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting; have: ${JSON.stringify(this.buf.toString('latin1').slice(0, 200))}`)), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Reads one line (without CRLF). */
  async line(timeoutMs = 5000): Promise<string> {
    for (;;) {
      const i = this.buf.indexOf('\r\n');
      if (i !== -1) {
        const l = this.buf.subarray(0, i).toString('utf8');
        this.buf = this.buf.subarray(i + 2);
        return l;
      }
      await this.waitData(timeoutMs);
    }
  }

  /** Sends a command line and returns its status line. */
  async cmd(line: string): Promise<string> {
    this.write(`${line}\r\n`);
    return this.line();
  }

  /** Reads a multi-line reply body (after a status line was read) up to ".\r\n". */
  async body(timeoutMs = 10000): Promise<{ lines: string[]; raw: Buffer }> {
    let start = 0;
    for (;;) {
      const end = findTerminator(this.buf, start);
      if (end !== -1) {
        const raw = this.buf.subarray(0, end);
        this.buf = this.buf.subarray(end);
        const text = raw.subarray(0, raw.length - 3).toString('latin1');
        const lines = text === '' ? [] : text.slice(0, -2).split('\r\n');
        return { lines, raw: Buffer.from(raw) };
      }
      start = Math.max(0, this.buf.length - 4);
      await this.waitData(timeoutMs);
    }
  }

  /** Sends a command expecting a multi-line reply; the body is read only after +OK. */
  async multi(line: string): Promise<MultiLine> {
    const status = await this.cmd(line);
    if (!status.startsWith('+OK')) return { status, lines: [], raw: Buffer.alloc(0) };
    const { lines, raw } = await this.body();
    return { status, lines, raw };
  }

  async login(user: string, password: string): Promise<string> {
    const u = await this.cmd(`USER ${user}`);
    if (!u.startsWith('+OK')) throw new Error(`USER failed: ${u}`);
    return this.cmd(`PASS ${password}`);
  }

  /** Resolves when the server has closed the connection. */
  async closed(timeoutMs = 5000): Promise<void> {
    while (!this.ended) await this.waitData(timeoutMs).catch((e: unknown) => {
      if (!this.ended) throw e;
    });
  }

  /** Everything received and not yet read. */
  rest(): string {
    return this.buf.toString('latin1');
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * What a new connection to `port` meets first: the connect error's code (ECONNREFUSED,
 * ECONNRESET) or the server's first line. A stopping server must never answer +OK.
 */
export async function firstAnswer(port: number): Promise<string> {
  const socket = connect({ port, host: '127.0.0.1' });
  try {
    return await Promise.race([
      once(socket, 'error').then(([e]) => String((e as NodeJS.ErrnoException).code)),
      once(socket, 'data').then(([d]) => String(d).trimEnd()),
    ]);
  } finally {
    socket.destroy();
  }
}

/** Index just past the ".\r\n" that ends a multi-line reply (at start, or after a CRLF), or -1. */
function findTerminator(buf: Buffer, from: number): number {
  if (from === 0 && buf.subarray(0, 3).toString('latin1') === '.\r\n') return 3;
  const i = buf.indexOf('\r\n.\r\n', Math.max(0, from));
  return i === -1 ? -1 : i + 5;
}

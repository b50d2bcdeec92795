/**
 * A minimal LMTP client (RFC 2033) for delivery load: LHLO once, then per message MAIL, RCPT,
 * DATA with one reply per recipient (§4.2). A message counts as delivered only on a 250 reply
 * to its DATA, i.e. once the server has acknowledged it as stored.
 */
import { connect, type Socket } from 'node:net';
import { stuff } from './messages.js';

const TIMEOUT_MS = 60_000;

export class LmtpClient {
  private buf = '';
  private waiter: (() => void) | undefined;
  private failure: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (s: string) => {
      this.buf += s;
      this.wake();
    });
    const fail = (e: Error): void => {
      this.failure ??= e;
      this.wake();
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed by server')));
    socket.setTimeout(TIMEOUT_MS, () => socket.destroy(new Error('timeout')));
  }

  static async open(host: string, port: number): Promise<LmtpClient> {
    const socket = connect({ host, port });
    socket.setNoDelay(true);
    const c = new LmtpClient(socket);
    await c.expect(220);
    socket.write('LHLO bench.example\r\n');
    await c.expect(250);
    return c;
  }

  /** Delivers one message (CRLF line endings, not yet dot-stuffed) to one recipient. */
  async deliver(from: string, to: string, message: Buffer): Promise<void> {
    this.socket.write(`MAIL FROM:<${from}>\r\n`);
    await this.expect(250);
    this.socket.write(`RCPT TO:<${to}>\r\n`);
    await this.expect(250);
    this.socket.write('DATA\r\n');
    await this.expect(354);
    this.socket.write(stuff(message)); // with the terminating ".\r\n" (RFC 5321 §4.5.2 = RFC 1939 §3)
    await this.expect(250);
  }

  async quit(): Promise<void> {
    this.socket.write('QUIT\r\n');
    await this.expect(221).catch(() => {});
    this.socket.destroy();
  }

  /** Reads one (possibly multi-line) reply and checks its code. */
  private async expect(code: number): Promise<string> {
    for (;;) {
      // A reply ends with a line "ddd text" (a space, not a hyphen, after the code).
      const m = /^(\d{3}) [^\r\n]*\r\n/m.exec(this.buf);
      if (m) {
        const reply = this.buf.slice(0, m.index + m[0].length);
        this.buf = this.buf.slice(m.index + m[0].length);
        if (Number(m[1]) !== code) throw new Error(`expected ${code}, server said: ${reply.trim()}`);
        return reply;
      }
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}


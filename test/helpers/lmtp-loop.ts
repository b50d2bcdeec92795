/**
 * LMTP deliveries in a loop over one connection at a time, for the failover and cluster tests
 * (issue 15, R-X17): each message has a number, and its outcome is recorded with the time: the
 * final reply code (250 with the uid it was saved as, or a 4xx/5xx from RCPT or DATA), or
 * `closed` when the connection ended or went silent before the final reply. After anything but a
 * 250 the loop opens a new connection (a short pause first) and goes on with the next number, so
 * it runs through a failover or a dead node until told to stop.
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { waitFor } from './wait.js';

export interface Outcome {
  readonly n: number;
  /** The loop's label (which node or proxy it talks to). */
  readonly via: string;
  /** Final reply code of RCPT (when not 250) or of DATA; 'closed': no final reply. */
  readonly code: number | 'closed';
  /** The uid from `Saved as uid N` (a 250). */
  readonly uid?: number;
  /** Date.now() when the outcome was known. */
  readonly at: number;
  /** The reply line, for messages. */
  readonly reply: string;
}

/** Message `n` for `rcpt`: an id header to recognise it, and 1 KB to ~40 KB of body. */
export function loopMessage(n: number, tag = 'loop'): Buffer {
  const line = `${String(n).padStart(7, '0')} the quick brown fox jumps over the lazy dog\r\n`;
  return Buffer.from(`Subject: ${tag} ${n}\r\nX-Loop-Id: ${n}\r\n\r\n${line.repeat(20 + ((n * 7919) % 700))}`);
}

class LineReader {
  private buf = '';
  private waiters: Array<() => void> = [];
  private ended = false;
  constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }
  private wake(): void {
    this.waiters.splice(0).forEach((w) => w());
  }
  /** The next final reply line (`NNN text`, skipping `NNN-` continuation lines). */
  async reply(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /^(\d{3}) [^\r\n]*\r\n/m.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m.index + m[0].length);
        return m[0].slice(0, -2);
      }
      if (this.ended) throw new Error('closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timeout');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => (clearTimeout(t), resolve()));
      });
    }
  }
}

export interface LoopOptions {
  readonly port: number;
  readonly via: string;
  readonly rcpt: string;
  /** Hands out the next message number (shared by loops, so numbers are unique). */
  readonly next: () => number;
  readonly stop: { now: boolean };
  readonly outcomes: Outcome[];
  readonly tag?: string;
  /** Milliseconds to wait for one reply before giving the connection up (default 20 000). */
  readonly replyTimeoutMs?: number;
}

/** Runs until `stop.now`; every message started has exactly one outcome in `outcomes`. */
export async function lmtpLoop(o: LoopOptions): Promise<void> {
  const timeout = o.replyTimeoutMs ?? 20_000;
  const code = (line: string): number => Number(line.slice(0, 3));
  while (!o.stop.now) {
    const socket = connect({ port: o.port, host: '127.0.0.1' });
    const r = new LineReader(socket);
    let n: number | undefined;
    try {
      await once(socket, 'connect');
      await r.reply(timeout);
      socket.write('LHLO loop.test\r\n');
      if (code(await r.reply(timeout)) !== 250) throw new Error('LHLO refused');
      while (!o.stop.now) {
        n = o.next();
        socket.write('MAIL FROM:<loop@example.org>\r\n');
        const mail = await r.reply(timeout);
        if (code(mail) !== 250) throw Object.assign(new Error('MAIL'), { line: mail });
        socket.write(`RCPT TO:<${o.rcpt}>\r\n`);
        const rcpt = await r.reply(timeout);
        if (code(rcpt) !== 250) throw Object.assign(new Error('RCPT'), { line: rcpt });
        socket.write('DATA\r\n');
        const data = await r.reply(timeout);
        if (code(data) !== 354) throw Object.assign(new Error('DATA'), { line: data });
        socket.write(Buffer.concat([loopMessage(n, o.tag), Buffer.from('.\r\n')]));
        const done = await r.reply(timeout);
        const uid = /Saved as uid (\d+)/.exec(done)?.[1];
        o.outcomes.push({ n, via: o.via, code: code(done), at: Date.now(), reply: done, ...(uid === undefined ? {} : { uid: Number(uid) }) });
        n = undefined;
        if (code(done) !== 250) break;
      }
    } catch (err) {
      const line = (err as { line?: string }).line;
      if (n !== undefined) o.outcomes.push({ n, via: o.via, code: line === undefined ? 'closed' : code(line), at: Date.now(), reply: line ?? (err as Error).message });
    } finally {
      socket.destroy();
    }
    if (!o.stop.now) await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * One LMTP transaction on its own connection to 127.0.0.1:`port`, a command at a time, to
 * `rcpt` (default alice@example.org) with `message` as the data (the dot added): the reply that
 * decided it, RCPT's when that refused, else DATA's.
 */
export async function lmtpOnce(port: number, message: string, rcpt = 'alice@example.org', timeoutMs = 20_000): Promise<string> {
  const s = connect({ port, host: '127.0.0.1' });
  s.on('error', () => undefined);
  let buf = '';
  s.on('data', (d: Buffer) => (buf += d.toString('latin1')));
  const replies = (): string[] => buf.split('\r\n').filter((l) => /^\d{3} /.test(l));
  const send = async (line: string): Promise<string> => {
    const seen = replies().length;
    if (line !== '') s.write(line);
    await waitFor(() => replies().length > seen, timeoutMs, `reply to ${JSON.stringify(line.slice(0, 20))}`);
    return replies()[seen]!;
  };
  try {
    await once(s, 'connect');
    await send('');
    await send('LHLO lmtp-once.test\r\n');
    await send('MAIL FROM:<s@example.org>\r\n');
    const decided = await send(`RCPT TO:<${rcpt}>\r\n`);
    if (!decided.startsWith('250')) return decided;
    await send('DATA\r\n');
    return await send(`${message}.\r\n`);
  } finally {
    s.destroy();
  }
}

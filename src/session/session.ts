/**
 * One POP3 connection: read a line, parse, guard, run, write (DESIGN.md "the flow of one
 * session"). Owns backpressure both ways and the idle timers; handlers never see the socket.
 *
 * - Input: lines are framed by protocol/line-reader.ts and taken one at a time; the socket is
 *   paused while more than INPUT_PAUSE octets wait, so a client pipelining without end costs
 *   bounded memory (R-X2), and input after PASS is simply the next line (habit 9).
 * - Output: replies to one batch of pipelined commands go out in one write; bodies and listings
 *   are streamed and the session waits for 'drain', so a client that never reads costs at most
 *   the socket's buffer, and is closed by the idle timer (R-S8) since it makes no progress.
 * - TLS: STLS swaps the socket for a TLSSocket and drops the plaintext read behind the STLS
 *   line (R-X3). SASL exchanges read the client's responses here, one line at a time, with the
 *   SASL line limit (readResponse); the command loop waits meanwhile.
 * - Layers: server.ts gives the command table and `trusted`; no import of commands/ or net/.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { SaslEnv } from '../auth/sasl/mechanism.js';
import { MAX_SASL_RESPONSE_LENGTH } from '../protocol/limits.js';
import { Pop3Error, toPop3Error } from '../errors.js';
import { parseCommand } from '../protocol/command.js';
import { LineReader, type LineEvent } from '../protocol/line-reader.js';
import { err, formatError, ok } from '../protocol/response.js';
import type { CommandContext, CommandTable, SessionServices, SessionSettings, SessionStats } from './context.js';
import { guard } from './guard.js';
import { SessionOutput } from './output.js';
import { saslEnvFor } from './sasl-env.js';
import { INITIAL_STATE, type SessionState } from './state.js';
import { channels } from '../observability/channels.js';
import { describeCommand, statusLine } from './protocol-log.js';
import type { Command } from '../protocol/command.js';
import type { BodyEncoder } from '../protocol/dot-stuffing.js';
import type { MessageSource } from '../storage/mail-store.js';

/** Pause reading when this many input octets wait unframed or unanswered. */
const INPUT_PAUSE = 64 * 1024;
/** Flush queued replies once they reach this size, and wait for 'drain' if the socket is full. */
const OUTPUT_FLUSH = 16 * 1024;
/** After a close is decided, how long a client that does not read may hold the socket. */
const CLOSE_GRACE_MS = 2000;

export interface SessionInfo {
  readonly id: string;
  readonly remoteAddress: string;
  /** The socket is a TLSSocket of the implicit-TLS listener (RFC 8314). */
  readonly secure?: boolean;
  /** R-S14: the peer is on a trusted network (`auth.trusted_networks`): plaintext logins allowed without TLS. */
  readonly trusted?: boolean;
}

export class Session implements CommandContext {
  state: SessionState = INITIAL_STATE;
  readonly stats: SessionStats = {
    commands: 0, badCommands: 0, authFailures: 0, retr: 0, retrBytes: 0, top: 0, topBytes: 0, dele: 0, bytesOut: 0,
  };
  readonly log: Logger;
  readonly remoteAddress: string;
  /** The connection's id (ConnectionInfo.id): the admin API names a session by it (R-X21). */
  readonly id: string;
  /** When the connection was accepted, ms since the epoch. */
  readonly since = Date.now();
  /** Resolves when the session has ended and released its maildrop. */
  readonly closed: Promise<void>;

  private reader: LineReader;
  private socket: Socket;
  private isSecure: boolean;
  private readonly trusted: boolean;
  /** A SASL exchange waits for the client's next line (readResponse). */
  private responseWaiter: (() => void) | undefined;
  readonly apopBanner: string | undefined;
  readonly saslEnv: SaslEnv;
  private readonly out = new SessionOutput(
    () => this.socket,
    () => this.armTimer(),
    (n) => (this.stats.bytesOut += n),
  );
  private running: Promise<void> | undefined;
  /** Input arrived while the pump was finishing: run it again. */
  private rekick = false;
  /** A multi-line body is being written: an error now can only close the connection. */
  private inBody = false;
  private timer: NodeJS.Timeout | undefined;
  /** The period `timer` was set for. */
  private timerMs = -1;
  private inputEnded = false;
  private ending: string | undefined;
  private finished = false;
  /** Aborted once the session finishes: handlers' long waits (the failed-login delay) stop. */
  private readonly aborter = new AbortController();
  /** Server shutdown: no new login; a session not logged in closes as soon as it is idle. */
  private draining = false;
  private resolveClosed!: () => void;

  constructor(
    socket: Socket,
    readonly services: SessionServices,
    readonly settings: SessionSettings,
    info: SessionInfo,
    private readonly commands: CommandTable,
  ) {
    this.socket = socket;
    this.isSecure = info.secure === true;
    this.trusted = info.trusted === true;
    this.remoteAddress = info.remoteAddress;
    this.id = info.id;
    // R-K2 / RFC 1939 §7: a banner unique to this greeting, `<process-id.clock@host>`.
    this.apopBanner = settings.apop
      ? `<${process.pid}.${Date.now()}${randomBytes(3).toString('hex')}@${settings.hostname}>`
      : undefined;
    this.saslEnv = saslEnvFor(services, settings, () => this.socket);
    this.log = services.logger.child({ session: info.id, ip: info.remoteAddress });
    this.reader = new LineReader(settings.maxCommandLength);
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  start(greeting: string): void {
    this.socket.setNoDelay(true);
    this.attach(this.socket);
    this.log.debug({ tls: this.isSecure }, 'session start');
    channels.sessionOpen.publish({ ip: this.remoteAddress, tls: this.isSecure });
    this.reply(ok(this.apopBanner === undefined ? greeting : `${greeting} ${this.apopBanner}`));
    this.flush();
    this.armTimer();
  }

  private readonly onDataBound = (chunk: Buffer): void => this.onData(chunk);
  private readonly onEndBound = (): void => {
    this.inputEnded = true;
    this.responseWaiter?.();
    this.kick();
  };
  private readonly onErrorBound = (e: Error): void => this.log.debug({ err: e }, 'socket error');
  private readonly onCloseBound = (): void => {
    // A SASL exchange waiting for the client's next line must see the end too (no FIN may come).
    this.inputEnded = true;
    this.responseWaiter?.();
    void this.finish(this.ending ?? 'disconnected');
  };

  private attach(s: Socket): void {
    s.on('data', this.onDataBound).on('end', this.onEndBound).on('error', this.onErrorBound).on('close', this.onCloseBound);
  }

  private detach(s: Socket): void {
    s.off('data', this.onDataBound).off('end', this.onEndBound).off('error', this.onErrorBound).off('close', this.onCloseBound);
  }

  // --- CommandContext ---------------------------------------------------------------------------

  get secure(): boolean {
    return this.isSecure;
  }

  get plaintextAllowed(): boolean {
    return this.isSecure || this.trusted;
  }

  get stlsAvailable(): boolean {
    return !this.isSecure && this.services.tls !== undefined;
  }

  async startTls(): Promise<boolean> {
    const provider = this.services.tls!;
    this.reply(ok('Begin TLS negotiation'));
    const data = this.out.take();
    const plain = this.socket;
    await new Promise<void>((resolve) => plain.write(data, () => resolve()));
    // R-X3 (RFC 2595 §4, the STARTTLS injection bug class): whatever the client sent after the
    // STLS line arrived in plaintext and is dropped unread; only what comes over TLS counts.
    const injected = this.reader.buffered;
    this.reader = new LineReader(this.settings.maxCommandLength);
    if (injected > 0) this.log.warn({ event: 'stls_plaintext_discarded', octets: injected }, 'plaintext after STLS discarded');
    this.detach(plain);
    const secure = provider.wrap(plain);
    this.socket = secure;
    this.attach(secure);
    this.isSecure = await new Promise<boolean>((resolve) => {
      secure.once('secure', () => resolve(true));
      secure.once('close', () => resolve(false));
    });
    this.log.debug({ ok: this.isSecure, protocol: secure.getProtocol() }, 'STLS handshake');
    return this.isSecure;
  }

  readResponse(): Promise<LineEvent | undefined> {
    this.flush();
    this.reader.setMaxLength(MAX_SASL_RESPONSE_LENGTH);
    return new Promise<LineEvent | undefined>((resolve) => {
      const take = (): void => {
        const event = this.reader.next();
        if (event === undefined && !this.inputEnded && !this.finished && !this.socket.destroyed && this.ending === undefined) {
          if (this.socket.isPaused() && this.reader.buffered <= INPUT_PAUSE) this.socket.resume();
          return;
        }
        this.responseWaiter = undefined;
        resolve(event);
      };
      this.responseWaiter = take;
      take();
    }).finally(() => {
      this.reader.setMaxLength(this.settings.maxCommandLength);
      this.armTimer();
    });
  }

  reply(data: Buffer): void {
    if (this.settings.protocolLog === true) this.log.debug({ line: statusLine(data) }, 'S:');
    this.out.push(data);
  }

  async sendBody(status: Buffer, body: AsyncIterable<Buffer>): Promise<number> {
    this.reply(status);
    this.inBody = true;
    const sent = await this.out.stream(body);
    this.inBody = false;
    return sent;
  }

  async sendMessage(status: Buffer, source: MessageSource, encoder: BodyEncoder, meter?: (octets: number) => void): Promise<number> {
    this.reply(status);
    this.inBody = true;
    const sent = await this.out.message(source, encoder, meter);
    this.inBody = false;
    return sent;
  }

  end(reason: string): void {
    this.ending ??= reason;
  }

  get signal(): AbortSignal {
    return this.aborter.signal;
  }

  /**
   * Server shutdown begins: a session that has not logged in and runs no command is told so and
   * closed now; a logged-in one may go on until it QUITs or the server's deadline aborts it.
   */
  shutdown(): void {
    this.draining = true;
    if (this.running === undefined) this.closeIfDraining();
  }

  private closeIfDraining(): void {
    if (!this.draining || this.finished || this.state.phase === 'transaction') return;
    this.reply(err('Server shutting down, try again later', 'SYS/TEMP'));
    this.flush();
    this.close('server shutdown');
  }

  /** Server shutdown, or an admin ending the session (R-X21): drop the connection without UPDATE (R-K4). */
  abort(reason = 'server shutdown'): void {
    this.ending ??= reason;
    this.socket.destroy();
  }

  // --- input ------------------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.finished || this.ending !== undefined) return;
    this.reader.push(chunk);
    if (this.reader.buffered > INPUT_PAUSE) this.socket.pause();
    if (this.responseWaiter !== undefined) return this.responseWaiter();
    this.kick();
  }

  /** Starts the command loop unless it runs; a loop that is finishing runs once more. */
  private kick(): void {
    if (this.running !== undefined) {
      this.rekick = true;
      return;
    }
    this.rekick = false;
    this.running = this.pump().finally(() => {
      this.running = undefined;
      if (this.rekick && !this.finished) this.kick();
    });
  }

  private async pump(): Promise<void> {
    for (;;) {
      if (this.finished || this.ending !== undefined) break;
      const event = this.reader.next();
      if (event === undefined) break;
      this.armTimer(); // R-S8: any command resets the idle timer
      await this.handle(event);
      this.armTimer(); // and the timer that applies now may be the other one (after PASS)
      if (this.out.pending >= OUTPUT_FLUSH) {
        this.flush();
        if (this.socket.writableNeedDrain) await this.out.drained().catch(() => undefined);
      }
    }
    this.flush();
    if (this.finished) return;
    if (this.ending !== undefined) return this.close(this.ending);
    if (this.draining) return this.closeIfDraining();
    if (this.inputEnded) return this.close('client closed');
    if (this.socket.isPaused() && this.reader.buffered <= INPUT_PAUSE) this.socket.resume();
  }

  private async handle(event: LineEvent): Promise<void> {
    this.stats.commands++;
    if (event.kind === 'too-long') {
      return this.badCommand(
        new Pop3Error('LINE_TOO_LONG', `Command line too long (max ${this.settings.maxCommandLength} octets)`),
      );
    }
    const parsed = parseCommand(event.line);
    if (!parsed.ok) return this.badCommand(parsed.error);
    const { command } = parsed;
    const spec = this.commands[command.name];
    if (this.settings.protocolLog === true) this.log.debug({ line: describeCommand(command) }, 'C:');
    const refused = guard(spec, this.state.phase, this.settings, this);
    if (refused !== undefined) return this.badCommand(refused);
    const started = process.hrtime.bigint();
    let outcome = false;
    try {
      await spec.run(this, command);
      outcome = true;
    } catch (e) {
      const error = toPop3Error(e);
      if (this.inBody) {
        // The status line and part of the body are out: an -ERR now would read as message text.
        this.inBody = false;
        if (this.writable()) this.log.error({ err: e, command: command.name }, 'transfer failed');
        this.socket.destroy();
        return this.end('transfer failed');
      }
      if (error.code === 'INTERNAL') {
        this.log.error({ err: e, command: command.name }, 'command failed');
        channels.error.publish({ kind: 'command' });
      }
      this.fail(error);
    } finally {
      this.observe(command, outcome, started);
    }
  }

  private observe(command: Command, ok: boolean, started: bigint): void {
    if (!channels.command.hasSubscribers) return;
    channels.command.publish({ command: command.name, ok, seconds: Number(process.hrtime.bigint() - started) / 1e9 });
  }

  private badCommand(error: Pop3Error): void {
    this.stats.badCommands++;
    if (this.stats.badCommands >= this.settings.maxBadCommands) {
      // R-S10: the server may close after a negative reply.
      this.fail(new Pop3Error('TOO_MANY_ERRORS', 'Too many invalid commands, closing connection', { disconnect: true }));
    } else {
      this.fail(error);
    }
  }

  private fail(error: Pop3Error): void {
    if (!this.writable()) return this.end('disconnected');
    this.reply(formatError(error));
    if (error.disconnect) this.end(error.code === 'TOO_MANY_ERRORS' ? 'too many errors' : error.code.toLowerCase());
  }

  // --- output -----------------------------------------------------------------------------------

  private writable(): boolean {
    return this.out.writable();
  }

  private flush(): void {
    this.out.flush();
  }

  // --- timers and the end -----------------------------------------------------------------------

  private armTimer(): void {
    if (this.finished) {
      if (this.timer !== undefined) clearTimeout(this.timer);
      return;
    }
    let ms = this.settings.timeoutAuthenticatedMs;
    if (this.state.phase === 'authorization') {
      ms = this.settings.timeoutUnauthenticatedMs;
      // R-X9: a client trickling one command per idle period still has to log in in time.
      const login = this.settings.loginTimeoutMs ?? 0;
      if (login > 0) ms = Math.max(0, Math.min(ms, this.since + login - Date.now()));
    }
    // The same period again (every command after login): restart the timer in place.
    if (this.timer !== undefined && ms === this.timerMs) {
      this.timer.refresh();
      return;
    }
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerMs = ms;
    this.timer = setTimeout(() => this.onIdle(), ms);
    this.timer.unref();
  }

  private onIdle(): void {
    if (this.finished) return;
    // R-S8: a notice line, then close; the session does not enter UPDATE, nothing is deleted.
    if (this.inBody) {
      // Mid-body a notice would read as message text: the truncated reply and the close say it.
      this.ending ??= 'timeout';
      this.socket.destroy();
      return;
    }
    this.out.clear();
    this.reply(err('Disconnected for inactivity'));
    this.flush();
    this.close('timeout');
  }

  private close(reason: string): void {
    this.ending ??= reason;
    if (this.socket.destroyed) return void this.finish(reason);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  /** Runs once: waits for the running command, releases the maildrop, logs the summary line. */
  private async finish(reason: string): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    this.aborter.abort();
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (!this.socket.destroyed) this.close(reason);
    await this.running?.catch(() => undefined);
    const state = this.state;
    if (state.phase === 'transaction') {
      // R-K4: no UPDATE without QUIT. Only the retrieved marks are recorded.
      await state.maildrop.snapshot
        .commit(state.maildrop.seenOnly())
        .catch((e: unknown) => this.log.error({ err: e }, 'recording retrieved marks failed'))
        .finally(() => state.maildrop.snapshot.release());
    }
    const s = this.stats;
    if (s.user !== undefined) this.services.limits?.releaseUser(s.user);
    channels.sessionClose.publish({ reason: this.ending ?? reason, bytesOut: s.bytesOut, retr: s.retr, dele: s.dele });
    this.log.info(
      {
        event: 'session_end', reason: this.ending ?? reason, user: s.user, mailbox: s.mailbox, commands: s.commands, bad: s.badCommands,
        authFailures: s.authFailures, retr: s.retr, retrBytes: s.retrBytes, top: s.top, topBytes: s.topBytes,
        dele: s.dele, bytesOut: s.bytesOut, mailboxMessages: s.mailboxMessages, mailboxBytes: s.mailboxBytes,
      },
      'session end',
    );
    this.resolveClosed();
  }
}

/**
 * What a command handler may use: the settings, the services behind interfaces, the session's
 * counters, and a small output API. Handlers never see the socket.
 */
import type { Logger } from 'pino';
import type { Authenticator } from '../auth/authenticator.js';
import type { MailStore } from '../storage/mail-store.js';
import type { SessionState } from './state.js';

export interface SessionSettings {
  /** R-S2: longest command line in octets, CRLF included (40–1024). */
  readonly maxCommandLength: number;
  /** R-S8: idle timer before login, milliseconds. */
  readonly timeoutUnauthenticatedMs: number;
  /** R-S8: idle timer after login, milliseconds. */
  readonly timeoutAuthenticatedMs: number;
  /** R-S3: snapshot (Exchange's default) or an exclusive lock per maildrop. */
  readonly lockMode: 'snapshot' | 'exclusive';
  /** R-K7: answer LAST (qpopper compatibility). */
  readonly lastCommand: boolean;
  /** R-S10: bad commands before the server closes the connection. */
  readonly maxBadCommands: number;
  /** R-S10: failed logins before the server closes the connection. */
  readonly maxAuthFailures: number;
  /** Host name shown in the greeting and sign-off. */
  readonly hostname: string;
}

export interface SessionServices {
  readonly authenticator: Authenticator;
  readonly store: MailStore;
  readonly logger: Logger;
}

/** Counters for the one summary line a session logs (DESIGN.md habit 8). */
export interface SessionStats {
  commands: number;
  badCommands: number;
  authFailures: number;
  retr: number;
  retrBytes: number;
  top: number;
  topBytes: number;
  dele: number;
  bytesOut: number;
  /** Set once the maildrop is open: who logged in, which maildrop, messages and octets at login. */
  user?: string;
  mailbox?: string;
  mailboxMessages?: number;
  mailboxBytes?: number;
}

export interface CommandContext {
  readonly settings: SessionSettings;
  readonly services: SessionServices;
  readonly stats: SessionStats;
  readonly remoteAddress: string;
  readonly log: Logger;
  /** Current state; handlers move the session on by assigning it. */
  state: SessionState;
  /** Queues a reply; replies are written in order, batched per read (R-X2). */
  reply(data: Buffer): void;
  /** Writes `status`, then streams `body` honouring backpressure; resolves with body octets sent. */
  sendBody(status: Buffer, body: AsyncIterable<Buffer>): Promise<number>;
  /** Ends the session once queued replies are flushed. */
  end(reason: string): void;
}

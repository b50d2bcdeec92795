/**
 * What a command handler may use: the settings, the services behind interfaces, the session's
 * counters, and a small output API. Handlers never see the socket. Also what a command is to the
 * session (CommandSpec, CommandTable): the table itself (commands/index.ts) is handed to each
 * Session by server.ts, so session/ never imports commands/ (docs/architecture.md section 3).
 */
import type { Logger } from 'pino';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Authenticator } from '../auth/authenticator.js';
import type { PeerIdentity, SaslEnv } from '../auth/sasl/mechanism.js';
import type { TokenVerifier } from '../auth/sasl/token-verifier.js';
import type { GssapiAcceptor } from '../auth/sasl/gssapi.js';
import type { Command, CommandName } from '../protocol/command.js';
import type { LineEvent } from '../protocol/line-reader.js';
import type { LoginThrottle } from '../auth/throttle.js';
import type { ConnectionCaps } from '../policy/connection-caps.js';
import type { PollLimiter } from '../policy/poll-limits.js';
import type { PollPolicy } from '../policy/user-policy.js';
import type { MailStore, MessageSource } from '../storage/mail-store.js';
import type { Phase, SessionState } from './state.js';
import type { BodyEncoder, ClientWorkaround } from '../protocol/dot-stuffing.js';
import type { DeleteMode } from './maildrop.js';

/** A command as the session runs it (DESIGN.md habit 2); commands/types.ts builds them. */
export interface CommandSpec {
  readonly states: readonly Phase[];
  /** Settings that switch the command off (it then answers like an unknown command). */
  readonly enabled?: (settings: SessionSettings) => boolean;
  /** Carries a password in the clear: refused where R-S14's plaintext policy forbids it. */
  readonly plaintext?: boolean;
  readonly run: (ctx: CommandContext, cmd: Command) => Promise<void> | void;
}

/** Every POP3 keyword's entry (commands/index.ts COMMANDS). */
export type CommandTable = Readonly<Record<CommandName, CommandSpec>>;

/** What STLS and the SASL EXTERNAL mechanism need of TLS; net/tls.ts TlsProvider is the one implementation. */
export interface SessionTls {
  /** A server-side TLSSocket over `socket` with the current certificate and options. */
  wrap(socket: Socket): TLSSocket;
  /** The verified client certificate's identity, if any (R-X4 EXTERNAL). */
  peerIdentity(socket: TLSSocket): PeerIdentity | undefined;
}

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
  /** R-K2, R-K9: offer APOP; the greeting then carries the `<pid.clock@host>` banner. */
  readonly apop: boolean;
  /** R-S9, R-X4: SASL mechanisms offered by AUTH, upper case (auth/sasl/index.ts). */
  readonly mechanisms: readonly string[];
  /** R-X14: users who may log in to any maildrop with their own password (authzid, `user*master`). */
  readonly masterUsers: readonly string[];
  /** R-X14: the directory marks master users too (LDAP `master_attribute`), so `user*master` is parsed. */
  readonly directoryMasters?: boolean;
  /** R-X12: client workarounds RETR and TOP apply (protocol/dot-stuffing.ts). */
  readonly workarounds: readonly ClientWorkaround[];
  /** R-X12: what UPDATE does with messages marked deleted: remove them, or hide them from POP3. */
  readonly deleteMode: DeleteMode;
  /** R-X9: a session must log in within this time, however it trickles commands (0 = no limit). */
  readonly loginTimeoutMs?: number;
  /** R-X13: log each command and status line (secrets masked) at debug level. */
  readonly protocolLog?: boolean;
}

export interface SessionServices {
  readonly authenticator: Authenticator;
  readonly store: MailStore;
  readonly logger: Logger;
  /** R-X10: per-user EXPIRE and LOGIN-DELAY for CAPA; absent: neither is advertised. */
  readonly policy?: PollPolicy;
  /** R-X10: LOGIN-DELAY and the daily download cap enforced; absent: neither is. */
  readonly pollLimits?: PollLimiter;
  /** R-X9: the failed-login delay, one per server so it spans sessions (login.ts). */
  readonly throttle: LoginThrottle;
  /** TLS certificates and options; absent: no implicit TLS, no STLS. */
  readonly tls?: SessionTls;
  /** OAUTHBEARER/XOAUTH2 token checks; absent when no issuer is configured. */
  readonly tokens?: TokenVerifier;
  /** R-X20: the Kerberos acceptor for GSSAPI; absent when not configured. */
  readonly gssapi?: GssapiAcceptor;
  /** Per-process random secret (SCRAM salts for unknown users). */
  readonly serverSecret: Buffer;
  /** R-X9: connection caps; the per-user one is taken at login. */
  readonly limits?: ConnectionCaps;
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
  /**
   * RETR/TOP: writes `status`, then the message from `source` through `encoder`, honouring
   * backpressure, telling `meter` the octets written; closes the source; resolves with the octets.
   */
  sendMessage(status: Buffer, source: MessageSource, encoder: BodyEncoder, meter?: (octets: number) => void): Promise<number>;
  /** Ends the session once queued replies are flushed. */
  end(reason: string): void;
  /** Aborted when the connection is gone or the server shuts down: long waits stop early. */
  readonly signal: AbortSignal;

  // --- TLS and SASL (R-X3, R-S14, R-X4) ---
  /** The connection is encrypted (implicit TLS, or after STLS). */
  readonly secure: boolean;
  /** R-S14: USER/PASS, PLAIN and LOGIN may be used: TLS, or a trusted network. */
  readonly plaintextAllowed: boolean;
  /** STLS can be offered: TLS is configured and the connection is not encrypted yet. */
  readonly stlsAvailable: boolean;
  /** R-K2: the APOP banner of the greeting, when APOP is enabled. */
  readonly apopBanner: string | undefined;
  /** What SASL mechanisms may use on this connection. */
  readonly saslEnv: SaslEnv;
  /**
   * STLS (RFC 2595 §4): writes `+OK`, drops every byte the client sent after the STLS line (R-X3:
   * no command injection), then performs the TLS handshake. Resolves false if it failed.
   */
  startTls(): Promise<boolean>;
  /**
   * RFC 5034 §4: flushes replies and waits for the client's next line (a SASL response), with the
   * SASL line limit. Undefined when the connection ended first.
   */
  readResponse(): Promise<LineEvent | undefined>;
}

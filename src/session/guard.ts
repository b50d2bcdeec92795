/**
 * The one place that decides whether a parsed command may run now (DESIGN.md habit 2): the
 * command must be enabled by the settings, allowed in the current state, and, for the commands
 * that carry a password in the clear (USER/PASS), allowed by the plaintext policy (R-S14).
 */
import { Pop3Error } from '../errors.js';
import type { CommandSpec, SessionSettings } from './context.js';
import type { Phase } from './state.js';

/** What the guard needs to know about the connection. */
export interface ConnectionFacts {
  readonly plaintextAllowed: boolean;
  readonly stlsAvailable: boolean;
}

/**
 * R-S14: the refusal every plaintext login gets on an unprotected connection. It is decided before
 * any user name is looked at, so it is the same for everyone and reveals nothing.
 */
export function plaintextRefused(conn: ConnectionFacts): Pop3Error {
  const hint = conn.stlsAvailable ? 'use STLS first' : 'connect with TLS (POP3S)';
  return new Pop3Error('PLAINTEXT_DISALLOWED', `Plaintext authentication is not allowed on an unencrypted connection, ${hint}`, {
    responseCode: 'AUTH',
  });
}

export function guard(spec: CommandSpec, phase: Phase, settings: SessionSettings, conn: ConnectionFacts): Pop3Error | undefined {
  if (spec.enabled !== undefined && !spec.enabled(settings)) {
    return new Pop3Error('UNKNOWN_COMMAND', 'Unknown command');
  }
  if (!spec.states.includes(phase)) {
    return new Pop3Error(
      'BAD_STATE',
      phase === 'authorization' ? 'Not logged in, command not valid in this state' : 'Command not valid in this state',
    );
  }
  if (spec.plaintext === true && !conn.plaintextAllowed) return plaintextRefused(conn);
  return undefined;
}

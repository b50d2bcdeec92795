/**
 * The session state (RFC 1939 §3): AUTHORIZATION, then TRANSACTION once a maildrop is open, then
 * UPDATE after QUIT. The type makes illegal states impossible (DESIGN.md habit 3): the maildrop
 * exists only in TRANSACTION.
 */
import type { Maildrop } from './maildrop.js';

export type Phase = 'authorization' | 'transaction' | 'update';

/** A USER command that was accepted and waits for PASS (R-K3 forms already split). */
export interface PendingUser {
  /** The login name (domain\ prefix removed). */
  readonly user: string;
  /** R-K3: the maildrop asked for with `USER name/mailbox`, if any. */
  readonly mailbox: string | undefined;
}

export interface AuthorizationState {
  readonly phase: 'authorization';
  readonly pending: PendingUser | undefined;
}

export interface TransactionState {
  readonly phase: 'transaction';
  /** Who logged in. */
  readonly user: string;
  readonly maildrop: Maildrop;
}

export interface UpdateState {
  readonly phase: 'update';
}

export type SessionState = AuthorizationState | TransactionState | UpdateState;

export const INITIAL_STATE: AuthorizationState = { phase: 'authorization', pending: undefined };

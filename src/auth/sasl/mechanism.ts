/**
 * A SASL mechanism is a step machine without a socket (DESIGN.md "auth/sasl/"): the AUTH command
 * (commands/auth.ts) feeds it the client's decoded responses and sends its challenges; the
 * mechanism never sees the connection. RFC 4422 §3: an exchange is a series of challenges and
 * responses ending in success or failure. Adding a mechanism is one file and one entry in
 * sasl/index.ts; GSSAPI (gssapi.ts) is a step machine over the acceptor the env carries.
 */
import type { UserRecord } from '../directory.js';
import type { GssapiAcceptor } from './gssapi.js';
import type { TokenVerifier } from './token-verifier.js';

export type SaslStep =
  /**
   * Send `+ base64(data)` and wait for the client's next response. `failing`: the exchange has
   * already failed and the challenge carries the error (RFC 7628 §3.2.2); if the client cancels
   * instead of acknowledging, this failure is what gets logged.
   */
  | { readonly kind: 'challenge'; readonly data: Buffer; readonly failing?: { readonly user?: string | undefined; readonly reason: string } }
  /**
   * Authenticated as `record`. `authzid`: the identity the client asked to act as, when it named
   * a different one (R-X14 master users); the caller decides whether that is allowed.
   */
  | { readonly kind: 'success'; readonly record: UserRecord; readonly authzid?: string }
  /**
   * Failed. `user` (the name tried, if known) and `reason` are for the log line only. `password`:
   * the password that failed, where the mechanism carries one (PLAIN, LOGIN), for the login
   * throttle's stale-password check (R-X9); never logged.
   */
  | {
      readonly kind: 'failure';
      readonly user?: string;
      readonly reason: string;
      readonly malformed?: boolean;
      readonly password?: string;
    };

export interface SaslExchange {
  /** `response` is the decoded client response; undefined for an AUTH without initial response. */
  step(response: Buffer | undefined): Promise<SaslStep>;
}

/** The verified TLS client certificate of the connection (EXTERNAL). */
export interface PeerIdentity {
  /** Subject common name. */
  readonly commonName: string | undefined;
  /** rfc822Name entries of subjectAltName. */
  readonly emails: readonly string[];
}

/** What the connection offers mechanisms: the directory, the password check, facts about the connection. */
export interface SaslEnv {
  lookup(name: string): Promise<UserRecord | undefined>;
  /** The password check of USER/PASS, with its dummy work for unknown users (R-S13). */
  verifyPassword(name: string, password: string): Promise<UserRecord | undefined>;
  readonly hostname: string;
  /** Per-process secret: fake but stable SCRAM salts for unknown users (no enumeration). */
  readonly serverSecret: Buffer;
  /** Set when the client presented a certificate the configured CA verified. */
  readonly peer: PeerIdentity | undefined;
  readonly tokens: TokenVerifier | undefined;
  /** The Kerberos acceptor (R-X20); undefined when GSSAPI is not configured. */
  readonly gssapi?: GssapiAcceptor | undefined;
}

/**
 * What one exchange may use: the connection's, with the failed-login penalty of R-X9 served
 * before any credential is checked. `lookup` and `verifyPassword` serve it for the name they are
 * given before they answer, so a mechanism that checks a credential it got from either is covered;
 * a mechanism that checks a credential before it knows whose it is (a bearer token's signature)
 * calls `penalty` first. The AUTH command serves it again, for the name a final step carries,
 * before it answers (a no-op once served).
 */
export interface ExchangeEnv extends SaslEnv {
  /** Waits until the address's and `user`'s current penalty has been served in this exchange. */
  penalty(user: string | undefined): Promise<void>;
}

export interface Mechanism {
  readonly name: string;
  /** Carries a reusable secret in the clear: allowed only by R-S14's plaintext policy. */
  readonly plaintext: boolean;
  /** Whether the mechanism can work on this connection (EXTERNAL needs a certificate, …). */
  usable(env: SaslEnv): boolean;
  start(env: ExchangeEnv): SaslExchange;
}

export const challenge = (data: Buffer | string): SaslStep => ({
  kind: 'challenge',
  data: typeof data === 'string' ? Buffer.from(data, 'utf8') : data,
});

export const failure = (reason: string, user?: string, malformed = false): SaslStep =>
  user === undefined ? { kind: 'failure', reason, malformed } : { kind: 'failure', reason, user, malformed };

/** A wrong password for `user` (PLAIN, LOGIN): the password goes to the throttle, not the log. */
export const badPassword = (user: string, password: string): SaslStep => ({ kind: 'failure', reason: 'bad credentials', user, password });

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Strict UTF-8 decoding (RFC 4616 and friends); undefined for invalid input. */
export function decodeUtf8(b: Buffer): string | undefined {
  try {
    return utf8.decode(b);
  } catch {
    return undefined;
  }
}

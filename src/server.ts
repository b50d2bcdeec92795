/**
 * The POP3 server assembled from its parts. The caller (cli/serve.ts, or a test) picks the
 * concrete store and directory; this module only wires them (DESIGN.md: the composition root).
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { TokenVerifier } from './auth/sasl/token-verifier.js';
import { buildNetworks } from './net/networks.js';
import type { TlsProvider } from './net/tls.js';
import { Authenticator } from './auth/authenticator.js';
import type { UserDirectory } from './auth/directory.js';
import type { Logger } from './observability/logger.js';
import { Pop3Listener, type ListenAddress } from './net/listener.js';
import type { SessionSettings } from './session/context.js';
import type { PollPolicy } from './policy/user-policy.js';
import type { MailStore } from './storage/mail-store.js';

export interface PoplarServerOptions {
  readonly listen: readonly ListenAddress[];
  readonly settings: SessionSettings;
  readonly directory: UserDirectory;
  readonly store: MailStore;
  readonly logger: Logger;
  /** log2 scrypt cost of the dummy check for unknown users (R-S13). */
  readonly scryptCost: number;
  /** R-X10: what CAPA advertises as EXPIRE and LOGIN-DELAY, per user. */
  readonly policy?: PollPolicy;
  /** R-X3: certificates for implicit TLS and STLS; without it neither is offered. */
  readonly tls?: TlsProvider;
  /** R-S5: implicit-TLS (POP3S) addresses; needs `tls`. */
  readonly tlsListen?: readonly ListenAddress[];
  /** R-S14: networks where plaintext logins are allowed without TLS; default loopback. */
  readonly trustedNetworks?: readonly string[];
  /** OAUTHBEARER/XOAUTH2 token verification. */
  readonly tokens?: TokenVerifier;
}

export interface PoplarServer {
  /** The bound addresses (port 0 resolved): plain POP3 first, then POP3S. */
  addresses(): AddressInfo[];
  /** The implicit-TLS (POP3S) addresses. */
  tlsAddresses(): AddressInfo[];
  readonly sessionCount: number;
  close(): Promise<void>;
}

export async function startServer(opts: PoplarServerOptions): Promise<PoplarServer> {
  const authenticator = new Authenticator(opts.directory, { scryptCost: opts.scryptCost });
  const listener = new Pop3Listener(
    {
      authenticator, store: opts.store, logger: opts.logger, ...(opts.policy === undefined ? {} : { policy: opts.policy }),
      ...(opts.tls === undefined ? {} : { tls: opts.tls }),
      ...(opts.tokens === undefined ? {} : { tokens: opts.tokens }),
      trustedNetworks: buildNetworks(opts.trustedNetworks ?? ['127.0.0.0/8', '::1/128']),
      serverSecret: randomBytes(32),
    },
    opts.settings,
    'POP3 server ready',
  );
  await listener.listen(opts.listen);
  if (opts.tlsListen !== undefined && opts.tlsListen.length > 0) await listener.listen(opts.tlsListen, { tls: true });
  for (const a of listener.addresses(false)) opts.logger.info({ event: 'listening', address: a.address, port: a.port }, 'listening');
  for (const a of listener.addresses(true)) opts.logger.info({ event: 'listening', address: a.address, port: a.port, tls: true }, 'listening');
  return {
    addresses: () => listener.addresses(),
    tlsAddresses: () => listener.addresses(true),
    get sessionCount() {
      return listener.sessionCount;
    },
    close: () => listener.close(),
  };
}

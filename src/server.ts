/**
 * The POP3 server assembled from its parts. The caller (cli/serve.ts, or a test) picks the
 * concrete store and directory; this module only wires them (DESIGN.md: the composition root).
 */
import type { AddressInfo } from 'node:net';
import { Authenticator } from './auth/authenticator.js';
import type { UserDirectory } from './auth/directory.js';
import type { Logger } from './observability/logger.js';
import { Pop3Listener, type ListenAddress } from './net/listener.js';
import type { SessionSettings } from './session/context.js';
import type { MailStore } from './storage/mail-store.js';

export interface PoplarServerOptions {
  readonly listen: readonly ListenAddress[];
  readonly settings: SessionSettings;
  readonly directory: UserDirectory;
  readonly store: MailStore;
  readonly logger: Logger;
  /** log2 scrypt cost of the dummy check for unknown users (R-S13). */
  readonly scryptCost: number;
}

export interface PoplarServer {
  /** The bound addresses (port 0 resolved). */
  addresses(): AddressInfo[];
  readonly sessionCount: number;
  close(): Promise<void>;
}

export async function startServer(opts: PoplarServerOptions): Promise<PoplarServer> {
  const authenticator = new Authenticator(opts.directory, { scryptCost: opts.scryptCost });
  const listener = new Pop3Listener(
    { authenticator, store: opts.store, logger: opts.logger },
    opts.settings,
    'POP3 server ready',
  );
  await listener.listen(opts.listen);
  for (const a of listener.addresses()) opts.logger.info({ event: 'listening', address: a.address, port: a.port }, 'listening');
  return {
    addresses: () => listener.addresses(),
    get sessionCount() {
      return listener.sessionCount;
    },
    close: () => listener.close(),
  };
}

/**
 * The security half of `poplar serve` (R-X3, R-X4, R-X13): loads the TLS certificate and the
 * OAuth issuers' keys from the configuration, writes the pid file `poplar reload` reads, and
 * re-reads certificates and keys on SIGHUP without dropping a session (new connections get the
 * new certificate). A reload that fails keeps what was loaded and logs why.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TokenVerifier } from '../auth/sasl/token-verifier.js';
import { parseListen, type Config } from '../config/load.js';
import type { Logger } from '../observability/logger.js';
import { TlsProvider } from '../net/tls.js';
import type { PoplarServerOptions } from '../server.js';
import { CliError } from './common.js';

export interface Security {
  /** What startServer needs: TLS, the POP3S addresses, trusted networks, token verifier. */
  readonly serverOptions: Pick<PoplarServerOptions, 'tls' | 'tlsListen' | 'trustedNetworks' | 'tokens'>;
  /** Writes the pid file and installs the SIGHUP handler. */
  start(): Promise<void>;
  /** Removes the pid file and the handler. */
  stop(): Promise<void>;
  /** Re-reads certificate, key, CA and JWKS files. */
  reload(): Promise<void>;
}

export async function loadSecurity(config: Config, logger: Logger): Promise<Security> {
  let tls: TlsProvider | undefined;
  if (existsSync(config.tls.cert)) {
    tls = await TlsProvider.load({
      cert: config.tls.cert,
      key: config.tls.key,
      minVersion: config.tls.min_version,
      clientCa: config.tls.client_ca,
    }).catch((e: unknown) => {
      throw new CliError(`cannot load the TLS certificate ${config.tls.cert} / key ${config.tls.key}: ${(e as Error).message}`);
    });
  } else {
    logger.warn({ event: 'tls_off', cert: config.tls.cert }, 'no certificate: POP3S and STLS are off (make one with "poplar cert")');
  }
  const issuers = config.oauth.issuers.map((entry) => {
    const [issuer, jwks] = entry.split(' ') as [string, string];
    return { issuer, jwks };
  });
  const tokens = issuers.length === 0
    ? undefined
    : await TokenVerifier.create({ issuers, audience: config.oauth.audience, userClaim: config.oauth.user_claim }).catch((e: unknown) => {
      throw new CliError(`cannot load oauth.issuers keys: ${(e as Error).message}`);
    });

  const reload = async (): Promise<void> => {
    const results = await Promise.allSettled([tls?.reload(), tokens?.reload()]);
    const errors = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => String(r.reason));
    if (errors.length > 0) logger.error({ event: 'reload_failed', errors }, 'reload failed, keeping the previous certificates and keys');
    else logger.info({ event: 'reloaded', tls: tls !== undefined, oauth: tokens !== undefined }, 'certificates and keys reloaded');
  };
  const onHup = (): void => void reload();
  const pidFile = config.server.pid_file;

  return {
    serverOptions: {
      ...(tls === undefined ? {} : { tls, tlsListen: config.pop3.tls_listen.map(parseListen) }),
      ...(tokens === undefined ? {} : { tokens }),
      trustedNetworks: config.auth.trusted_networks,
    },
    reload,
    async start() {
      process.on('SIGHUP', onHup);
      if (pidFile === '') return;
      await mkdir(dirname(pidFile), { recursive: true });
      await writeFile(pidFile, `${process.pid}\n`, { mode: 0o644 });
    },
    async stop() {
      process.off('SIGHUP', onHup);
      if (pidFile === '') return;
      // Remove only our own pid file: another server may have taken the path over.
      const text = await readFile(pidFile, 'utf8').catch(() => '');
      if (text.trim() === String(process.pid)) await rm(pidFile, { force: true });
    },
  };
}

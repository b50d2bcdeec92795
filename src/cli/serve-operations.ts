/**
 * The operations half of `poplar serve` (R-X13, R-X9, R-S20): connection caps, PROXY networks
 * and the greeting from the configuration; the metrics and health endpoint; and the reload of
 * the configuration file on SIGHUP (`poplar reload`), applied to new sessions without dropping
 * live ones. Settings that need new sockets or a new store are reported, not applied.
 */
import type { Config } from '../config/load.js';
import { parseListen } from '../config/load.js';
import { startOpsServer, type OpsServer } from '../observability/http.js';
import type { Logger } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import { RefusalTally, refusalTallyDir } from '../delivery/refusals.js';
import type { OperationsOptions, PoplarServer } from '../server.js';

export function operationsOptions(config: Config): OperationsOptions {
  const p = config.pop3;
  return {
    limits: {
      maxConnections: p.max_connections,
      maxConnectionsPerIp: p.max_connections_per_ip,
      maxConnectionsPerUser: p.max_connections_per_user,
    },
    proxyNetworks: p.proxy_networks,
    greeting: p.greeting,
    failureDelay: { baseMs: config.auth.failure_delay, maxMs: config.auth.failure_delay_max, windowMs: config.auth.failure_window * 1000 },
    loginCache: { ttlMs: config.auth.cache_ttl * 1000, maxEntries: config.auth.cache_size },
  };
}

/** Keys read only at start: a reload that changes them says a restart is needed. */
const RESTART_KEYS: ReadonlyArray<(c: Config) => unknown> = [
  (c) => c.pop3.listen, (c) => c.pop3.tls_listen, (c) => c.lmtp.listen, (c) => c.storage, (c) => c.server.data_dir,
  (c) => c.server.metrics_listen, (c) => c.auth.users_file, (c) => c.log.level, (c) => c.policy.state_dir,
];

export interface Operations {
  stop(): Promise<void>;
}

/** Starts the metrics endpoint (if configured) and the SIGHUP configuration reload. */
export async function startOperations(opts: {
  readonly config: Config;
  readonly server: PoplarServer;
  readonly logger: Logger;
  /** Reads the configuration again (file and command-line overrides); throws ConfigError. */
  readonly reloadConfig?: () => Config;
  /** Applies a reloaded configuration to the parts serve.ts owns (session settings, policies). */
  readonly apply: (config: Config) => void;
}): Promise<Operations> {
  const { server, logger } = opts;
  let current = opts.config;
  let metrics: Metrics | undefined;
  let ops: OpsServer | undefined;
  if (current.server.metrics_listen !== '') {
    metrics = new Metrics({ beforeScrape: new RefusalTally(refusalTallyDir(current.server.data_dir)).publishNew });
    const { host, port } = parseListen(current.server.metrics_listen);
    ops = await startOpsServer({
      host,
      port,
      registry: metrics.registry,
      health: () => ({ ok: server.accepting, sessions: server.sessionCount }),
    });
    logger.info({ event: 'listening', protocol: 'http', address: ops.address().address, port: ops.address().port }, 'metrics and health endpoint');
  }
  const onHup = (): void => {
    if (opts.reloadConfig === undefined) return;
    let next: Config;
    try {
      next = opts.reloadConfig();
    } catch (e) {
      logger.error({ event: 'reload_failed', err: e }, 'configuration reload failed, keeping the running configuration');
      return;
    }
    const stale = RESTART_KEYS.filter((key) => JSON.stringify(key(next)) !== JSON.stringify(key(current)));
    opts.apply(next);
    current = next;
    logger.info({ event: 'config_reloaded', needsRestart: stale.length > 0 }, stale.length > 0
      ? 'configuration reloaded; listeners, storage, users file and log level change only with a restart'
      : 'configuration reloaded');
  };
  process.on('SIGHUP', onHup);
  return {
    async stop() {
      process.off('SIGHUP', onHup);
      metrics?.close();
      await ops?.close();
    },
  };
}

/**
 * The operations half of `poplar serve` (R-X13, R-X9, R-S20): connection caps, PROXY networks
 * and the greeting from the configuration; the metrics and health endpoint; and the reload of
 * the configuration on SIGHUP (`poplar reload`), applied to new sessions without dropping live
 * ones. Keys that need new sockets or a new store (config/restart-keys.ts) are not applied: the
 * log line and the reload's status file (read by `poplar reload`) name them.
 */
import { rename, rm, writeFile } from 'node:fs/promises';
import { ConfigError } from '../errors.js';
import type { Config } from '../config/load.js';
import { parseListen } from '../config/load.js';
import { configKeys, type KeyInfo } from '../config/keys.js';
import { startOpsServer, type OpsServer } from '../observability/http.js';
import type { Logger } from '../observability/logger.js';
import { Metrics, type WorkerStats } from '../observability/metrics.js';
import { RefusalTally, refusalTallyDir } from '../delivery/refusals.js';
import type { OperationsOptions, PoplarServer } from '../server.js';
import { reloadStatusPath, type ReloadStatus } from './serve-pidfile.js';
import type { SecurityReload } from './compose.js';

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
    trustedNetworks: config.auth.trusted_networks,
    shutdownTimeoutMs: config.server.shutdown_timeout * 1000,
  };
}

/** The RESTART_KEYS whose value in `next` differs from the one the server started with. */
export function restartNeeded(started: Config, next: Config): string[] {
  const value = (c: Config, k: KeyInfo): string => JSON.stringify((c[k.section as keyof Config] as Record<string, unknown>)[k.key]);
  return [...configKeys().values()].filter((k) => k.restart !== undefined && value(started, k) !== value(next, k)).map((k) => k.dotted);
}

export interface Operations {
  stop(): Promise<void>;
}

/** Starts the metrics endpoint (if configured) and the SIGHUP configuration reload. */
export async function startOperations(opts: {
  readonly config: Config;
  /** The health check's source: the server, or with workers the primary's view of them. */
  readonly server: Pick<PoplarServer, 'accepting' | 'sessionCount'>;
  readonly logger: Logger;
  /** R-X16, the primary: its workers' stats, and `/metrics` as the aggregate of every process. */
  readonly workers?: WorkerStats;
  readonly aggregate?: (own: Metrics) => Promise<string>;
  /** Reads the configuration again (file and command-line overrides); throws ConfigError. */
  readonly reloadConfig?: () => Config;
  /** Loads certificates and token keys from the files a reloaded configuration names. */
  readonly reloadSecurity: (config: Config) => Promise<SecurityReload>;
  /** Applies a reloaded configuration to the parts serve.ts owns (server, policies, sweeper, log). */
  readonly apply: (config: Config, security: SecurityReload) => void;
}): Promise<Operations> {
  const { server, logger } = opts;
  const started = opts.config;
  let metrics: Metrics | undefined;
  let ops: OpsServer | undefined;
  if (started.server.metrics_listen !== '') {
    const own = new Metrics({
      beforeScrape: new RefusalTally(refusalTallyDir(started.server.data_dir)).publishNew,
      ...(opts.workers === undefined ? {} : { workers: opts.workers }),
    });
    metrics = own;
    const aggregate = opts.aggregate;
    const { host, port } = parseListen(started.server.metrics_listen);
    ops = await startOpsServer({
      host,
      port,
      registry: aggregate === undefined ? own.registry : { contentType: own.registry.contentType, metrics: () => aggregate(own) },
      health: () => ({ ok: server.accepting, sessions: server.sessionCount, ...(opts.workers === undefined ? {} : { workers: opts.workers.live }) }),
    });
    logger.info({ event: 'listening', protocol: 'http', address: ops.address().address, port: ops.address().port }, 'metrics and health endpoint');
  }
  const statusPath = started.server.pid_file === '' ? undefined : reloadStatusPath(started.server.pid_file);
  let count = 0;
  const report = async (status: Omit<ReloadStatus, 'pid' | 'count'>): Promise<void> => {
    if (statusPath === undefined) return;
    const text = JSON.stringify({ pid: process.pid, count: ++count, ...status } satisfies ReloadStatus);
    const tmp = `${statusPath}.${process.pid}.tmp`;
    await writeFile(tmp, `${text}\n`, { mode: 0o644 });
    await rename(tmp, statusPath);
  };
  const reload = async (): Promise<void> => {
    if (opts.reloadConfig === undefined) return;
    let next: Config;
    try {
      next = opts.reloadConfig();
    } catch (e) {
      const errors = e instanceof ConfigError ? [...e.problems] : [String(e)];
      logger.error({ event: 'reload_failed', errors }, 'configuration reload failed, keeping the running configuration');
      return report({ applied: false, restartNeeded: [], errors });
    }
    const security = await opts.reloadSecurity(next);
    opts.apply(next, security);
    const restart = [...restartNeeded(started, next), ...security.restart];
    logger.info({ event: 'config_reloaded', restartNeeded: restart }, restart.length > 0
      ? `configuration reloaded; changed only by a restart: ${restart.join(', ')}`
      : 'configuration reloaded');
    if (security.errors.length > 0) {
      logger.error({ event: 'reload_failed', errors: security.errors }, 'certificates or keys did not load, keeping the previous ones');
    }
    return report({ applied: true, restartNeeded: restart, errors: security.errors });
  };
  let queue = Promise.resolve();
  const onHup = (): void => {
    queue = queue.then(reload).catch((err: unknown) => logger.error({ event: 'reload_failed', err }, 'configuration reload failed'));
  };
  process.on('SIGHUP', onHup);
  return {
    async stop() {
      process.off('SIGHUP', onHup);
      await queue;
      if (statusPath !== undefined && count > 0) await rm(statusPath, { force: true });
      metrics?.close();
      await ops?.close();
    },
  };
}

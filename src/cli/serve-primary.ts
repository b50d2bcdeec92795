/**
 * R-X16: the primary of `poplar serve` with `server.workers` > 1. It holds the pid file (taken by
 * serve.ts runServe), forks the workers (node:cluster; each runs serve.ts as a `WorkerRole` and
 * serves POP3, POP3S and LMTP on the shared listening sockets), and keeps what must be one per
 * server: the shared state every limit counts in (`SharedStateHost` over a `LocalSharedState`),
 * the metrics endpoint (the aggregate of every process), the retention sweeper, the reload, and
 * the admin listener (`admin.listen`, R-X21), whose sessions, failed logins and activity it asks
 * every worker for (admin/across-workers.ts).
 *
 * - A worker that dies is replaced at once, and everything it held (connections, user slots,
 *   claims) is given back; one dying again within CRASH_WINDOW_MS of the last death waits a
 *   doubling back-off (RESPAWN_BACKOFF_MS up to RESPAWN_BACKOFF_MAX_MS) so a crash loop is no hot
 *   loop. A worker that exits 0 was told to stop and is not replaced.
 * - SIGHUP / `poplar reload`: the primary reads the configuration, sends it to every worker (each
 *   applies it as one process would, certificates included), applies the shared settings, and
 *   writes the reload answer file with every worker's errors (serve-operations.ts).
 * - SIGTERM / SIGINT: every worker drains its sessions (`server.shutdown_timeout`), then the
 *   primary stops its own parts and returns; a worker still running DRAIN_GRACE_MS after the
 *   deadline is killed.
 *
 * - Heap: each worker starts with WORKER_V8_FLAGS before the primary's own node options (a flag
 *   given to node, or in NODE_OPTIONS, wins). V8's default first old-generation limit is small
 *   (~20 MB here), and the buffers a RETR from PostgreSQL receives (postgres.js copies each row
 *   out of its socket buffer) made it mark-compact several times a second; see docs/benchmarks.md
 *   "The workers' heap" for the measurement.
 *
 * Connections are spread by the kernel (`SCHED_NONE`: each worker accepts on the shared socket)
 * unless NODE_CLUSTER_SCHED_POLICY=rr asks node's round robin in the primary: see
 * docs/benchmarks.md "Workers" for the measurement.
 */
import cluster, { type Worker } from 'node:cluster';
import { acrossWorkersActivity, acrossWorkersFailures, acrossWorkersSessions, type AskWorkers } from '../admin/across-workers.js';
import type { Config } from '../config/load.js';
import type { Logger } from '../observability/logger.js';
import { LocalSharedState } from '../shared/local-state.js';
import { PrimaryChannel, SharedStateHost } from '../shared/ipc-host.js';
import type { SharedSettings } from '../shared/shared-state.js';
import type { MailStore } from '../storage/mail-store.js';
import { CliError } from './common.js';
import { closePostgres, createClusterState, createPolicies, releaseClusterHolder, createSweeper, defaultsFrom, type Directory } from './compose.js';
import { startAdmin, type AdminListener } from './serve-admin.js';
import { operationsOptions, startOperations } from './serve-operations.js';

export const CRASH_WINDOW_MS = 30_000;
export const RESPAWN_BACKOFF_MS = 250;
export const RESPAWN_BACKOFF_MAX_MS = 30_000;
const DRAIN_GRACE_MS = 5_000;
/** V8 options of every worker process (see the header). */
export const WORKER_V8_FLAGS = ['--initial-old-space-size=64'] as const;

/** The workers' node options: WORKER_V8_FLAGS unless node was given the same option already. */
export function workerExecArgv(execArgv: readonly string[], nodeOptions = ''): string[] {
  // V8 reads `--a_b` as `--a-b`.
  const nameOf = (arg: string): string => arg.split('=')[0]!.replace(/^--/, '').replaceAll('_', '-');
  const given = (flag: string): boolean =>
    [...execArgv, ...nodeOptions.split(/\s+/)].some((a) => a.startsWith('--') && nameOf(a) === nameOf(flag));
  return [...WORKER_V8_FLAGS.filter((f) => !given(f)), ...execArgv];
}
/** How long a worker may take to answer the primary (metrics, reload), ms. */
const REQUEST_TIMEOUT_MS = 5_000;
/** How long a stop waits for the workers to close their listening sockets before it drains them anyway. */
const STOP_ACCEPTING_TIMEOUT_MS = 2_000;
/** How long a worker may take to answer the admin API; a read then answers without it (`partial`). */
export const ADMIN_REQUEST_TIMEOUT_MS = 2_000;

export function sharedSettings(config: Config): SharedSettings {
  const o = operationsOptions(config);
  return { limits: o.limits!, penalty: o.failureDelay!, loginCache: o.loginCache! };
}

export async function runPrimary(opts: {
  readonly config: Config;
  readonly logger: Logger;
  readonly workers: number;
  readonly directory: Directory;
  readonly store: MailStore;
  readonly reloadConfig?: () => Config;
}): Promise<void> {
  const { config, logger, store } = opts;
  const state = new LocalSharedState(sharedSettings(config));
  const host = new SharedStateHost(state);
  // R-X17: on PostgreSQL the workers' penalties are the database's; the admin API reads them there.
  const clusterState = await createClusterState(config, state, sharedSettings(config));
  const channel = new PrimaryChannel();
  if (process.env['NODE_CLUSTER_SCHED_POLICY'] === undefined) cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({ serialization: 'advanced', execArgv: workerExecArgv(process.execArgv, process.env['NODE_OPTIONS']) });
  if (process.env['POPLAR_TEST_HOOKS'] === '1') {
    // Tests only: SIGUSR2 makes the shared state stop answering, or answer again.
    process.on('SIGUSR2', () => {
      host.stalled = !host.stalled;
      logger.warn({ event: 'shared_state_stalled', stalled: host.stalled }, 'test hook: shared state stalled');
    });
  }

  const live = new Map<number, Worker>();
  const ready = new Set<number>();
  /** R-X17: each worker's holder id in the cluster's shared state (PostgreSQL), by worker id. */
  const holders = new Map<number, string>();
  let restarts = 0;
  let stopping = false;
  let started = false;
  let lastReload: Config | undefined;
  const crashes: number[] = [];
  let startup: { resolve(): void; reject(e: Error): void } | undefined;

  const onMessage = (w: Worker, m: unknown): void => {
    if (host.receive(w, m) || channel.receive(m)) return;
    const t = (m as { t?: unknown } | null)?.t;
    if (t === 'hi') w.send({ t: 'hello', key: state.key.toString('hex') });
    else if (t === 'ready') {
      ready.add(w.id);
      const holder = (m as { holder?: unknown }).holder;
      if (typeof holder === 'string') holders.set(w.id, holder);
      logger.info({ event: 'worker_ready', workerId: w.id, pid: w.process.pid }, 'worker ready');
      // A replacement started from the file; a reload since then is sent to it again.
      if (lastReload !== undefined) void channel.request(w, 'reload', lastReload, REQUEST_TIMEOUT_MS).catch(() => undefined);
      if (!started && ready.size >= opts.workers) {
        started = true;
        logger.info({ event: 'workers_ready', workers: ready.size }, `${ready.size} workers ready`);
        startup?.resolve();
      }
    }
  };
  const fork = (): void => {
    const w = cluster.fork();
    live.set(w.id, w);
    w.on('message', (m: unknown) => onMessage(w, m));
    w.on('error', (err: Error) => logger.warn({ event: 'worker_ipc_error', workerId: w.id, err }, 'worker channel error'));
  };
  const allExited = new Set<() => void>();
  cluster.on('exit', (w, code, signal) => {
    live.delete(w.id);
    ready.delete(w.id);
    const released = host.releaseWorker(w.id);
    const holder = holders.get(w.id);
    holders.delete(w.id);
    // Its cluster-wide session slots and claims now, not at the end of its lease.
    if (holder !== undefined) void releaseClusterHolder(config, holder);
    for (const f of allExited) if (live.size === 0) f();
    const clean = code === 0 && signal === null;
    if (stopping || clean) {
      logger.info({ event: 'worker_exit', workerId: w.id, code, signal, released }, 'worker stopped');
      return;
    }
    if (!started) {
      logger.error({ event: 'worker_exit', workerId: w.id, code, signal }, 'a worker failed to start');
      startup?.reject(new CliError(`a worker process failed to start (exit code ${code ?? signal}); see the log above`));
      return;
    }
    const now = Date.now();
    while (crashes.length > 0 && now - crashes[0]! > CRASH_WINDOW_MS) crashes.shift();
    crashes.push(now);
    const delayMs = crashes.length <= 1 ? 0 : Math.min(RESPAWN_BACKOFF_MAX_MS, RESPAWN_BACKOFF_MS * 2 ** (crashes.length - 2));
    logger.error({ event: 'worker_exit', workerId: w.id, pid: w.process.pid, code, signal, released, restartInMs: delayMs }, 'worker died; replacing it');
    restarts++;
    const t = setTimeout(() => {
      if (!stopping) fork();
    }, delayMs);
    t.unref();
  });

  /** The workers that have said they are ready (the ones that answer requests). */
  const workerList = (): Worker[] => [...live.values()].filter((w) => ready.has(w.id));

  const stopWorkers = async (): Promise<void> => {
    if (live.size === 0) return;
    const done = new Promise<void>((resolve) => allExited.add(resolve));
    // R-X13: a stop refuses new connections. The signal reaches the workers one by one, and a worker
    // not yet told would greet a connection made after another had begun to drain: so every worker
    // first closes its listening sockets (answered, or STOP_ACCEPTING_TIMEOUT_MS passed), then all drain.
    await channel.broadcast(workerList(), 'stop-accepting', null, STOP_ACCEPTING_TIMEOUT_MS);
    for (const w of live.values()) w.process.kill('SIGTERM');
    const deadline = config.server.shutdown_timeout * 1000 + DRAIN_GRACE_MS;
    const timer = setTimeout(() => {
      for (const w of live.values()) {
        logger.error({ event: 'worker_kill', workerId: w.id }, 'worker did not stop in time; killing it');
        w.process.kill('SIGKILL');
      }
    }, deadline);
    await done;
    clearTimeout(timer);
  };

  // The signals are taken from the start: a stop asked while the workers start stops them.
  let stopSignal: ((signal: string) => void) | undefined;
  let asked: string | undefined;
  const onSignal = (signal: string): void => {
    if (stopSignal !== undefined) stopSignal(signal);
    else if (asked === undefined) {
      asked = signal;
      startup?.resolve();
    }
  };
  const onInt = (): void => onSignal('SIGINT');
  const onTerm = (): void => onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    await new Promise<void>((resolve, reject) => {
      startup = { resolve, reject };
      for (let i = 0; i < opts.workers; i++) fork();
    });
  } catch (e) {
    stopping = true;
    await stopWorkers();
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    throw e;
  }

  const policy = createPolicies(config, opts.directory);
  const sweeper = createSweeper(config, store, opts.directory, logger, undefined, policy);
  let sweepInterval = config.retention.sweep_interval;
  sweeper.start(sweepInterval * 1000);
  let failureWindowMs = config.auth.failure_window * 1000;
  const operations = await startOperations({
    config,
    server: {
      get accepting() {
        return !stopping && ready.size > 0;
      },
      get sessionCount() {
        return state.connections;
      },
    },
    logger,
    workers: {
      get live() {
        return ready.size;
      },
      get restarts() {
        return restarts;
      },
      connectionsByWorker: () => host.connectionsByWorker(),
    },
    aggregate: async (own) => {
      const answers = await channel.broadcast(workerList(), 'metrics', null, REQUEST_TIMEOUT_MS);
      return own.aggregate([...answers.values()].flatMap((a) => (a.status === 'fulfilled' ? [a.value] : [])));
    },
    ...(opts.reloadConfig === undefined ? {} : { reloadConfig: opts.reloadConfig }),
    reloadSecurity: async (next) => {
      lastReload = next;
      const answers = await channel.broadcast(workerList(), 'reload', next, REQUEST_TIMEOUT_MS);
      const errors = new Set<string>();
      const restart = new Set<string>();
      for (const [id, a] of answers) {
        if (a.status === 'rejected') errors.add(`worker ${id}: ${String(a.reason)}`);
        else {
          const r = a.value as { errors: string[]; restart: string[] };
          for (const e of r.errors) errors.add(e);
          for (const k of r.restart) restart.add(k);
        }
      }
      return { errors: [...errors], restart: [...restart], tokens: undefined };
    },
    apply: (next) => {
      state.configure(sharedSettings(next));
      clusterState?.configure(sharedSettings(next));
      failureWindowMs = next.auth.failure_window * 1000;
      policy.setDefaults(defaultsFrom(next));
      logger.level = next.log.level;
      if (next.retention.sweep_interval !== sweepInterval) {
        sweepInterval = next.retention.sweep_interval;
        void sweeper.stop();
        sweeper.start(sweepInterval * 1000);
      }
    },
  });

  // R-X21: the admin listener reads the workers' sessions, failed logins and counters.
  const ask: AskWorkers = (kind, body, only) =>
    channel.broadcast(workerList().filter((w) => only === undefined || w.id === only), kind, body, ADMIN_REQUEST_TIMEOUT_MS);
  let admin: AdminListener | undefined;
  try {
    admin = await startAdmin({
      config,
      server: {
        sessions: acrossWorkersSessions(ask, ADMIN_REQUEST_TIMEOUT_MS),
        failures: acrossWorkersFailures(ask, {
          // The primary's counters are the ones every worker's delay is read from.
          delayMs: (kind, key, now) => {
            if (clusterState !== undefined) return clusterState.penaltyNow(kind === 'address' ? key : '', kind === 'user' ? key : undefined, now);
            return kind === 'address' ? state.penaltyNowSync(key, undefined, now) : state.penaltyNowSync('', key, now);
          },
          windowMs: () => failureWindowMs,
        }),
        activity: acrossWorkersActivity(ask),
      },
      directory: opts.directory,
      policies: policy,
      store,
      logger,
    });
  } catch (e) {
    stopping = true;
    await stopWorkers();
    await Promise.all([sweeper.stop(), operations.stop()]);
    await Promise.all([store.close(), opts.directory.close?.(), clusterState?.close()]);
    await closePostgres();
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    throw e;
  }

  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ event: 'shutdown', signal, sessions: state.connections, workers: live.size }, 'shutting down');
      void Promise.all([stopWorkers(), admin?.close()])
        .then(() => Promise.all([sweeper.stop(), operations.stop()]))
        .then(() => Promise.all([store.close(), opts.directory.close?.(), clusterState?.close()]))
        .then(() => closePostgres())
        .catch((err: unknown) => logger.error({ err }, 'shutdown failed'))
        .finally(resolve);
    };
    stopSignal = stop;
    if (asked !== undefined) stop(asked);
  });
  process.off('SIGINT', onInt);
  process.off('SIGTERM', onTerm);
}

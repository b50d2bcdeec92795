/**
 * `poplar serve`: the one module that starts the server. The parts come from the composition root
 * (compose.ts, shared with the management subcommands); this module adds what only a running
 * server needs: the session settings, the first-run set-up on an empty data folder, the POP3
 * listeners (server.ts), LMTP when `lmtp.listen` is set, the retention sweeper, the reload, and a
 * clean stop on SIGINT/SIGTERM (sessions are closed without UPDATE: nothing is deleted).
 *
 * R-X16: with `server.workers` > 1 this process is the primary (serve-primary.ts) and forks the
 * workers, each of which runs `serve` below as a `WorkerRole`: no pid file, first run, sweeper,
 * metrics endpoint or admin listener of its own (the primary has them), the primary's shared
 * state, and reloads, metrics and the admin API's questions asked by the primary over IPC.
 */
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { makeCredentials, needsFor } from '../auth/credentials.js';
import { PasswdFile } from '../auth/passwd-file.js';
import { parseListen, type Config } from '../config/load.js';
import { sessionIdPrefix, workerAnswers } from '../admin/across-workers.js';
import { CounterHistory } from '../admin/history.js';
import { inProcessSessions } from '../admin/sources.js';
import { createServeLogger, type Logger } from '../observability/logger.js';
import type { PoplarServer } from '../server.js';
import type { SessionSettings } from '../session/context.js';
import type { MailStore } from '../storage/mail-store.js';
import {
  checkDatabase, closePostgres, createAgent, createClusterState, createGssapi, createPolicies, createPollState, createStore, createSweeper, defaultsFrom,
  loadSecurity, loadServerSecret, openDirectory, serverHostname, storeReady, type Directory, type SecurityReload,
} from './compose.js';
import { acquirePidFile } from './serve-pidfile.js';
import { startAdmin } from './serve-admin.js';
import { operationsOptions, startOperations, type Operations } from './serve-operations.js';
import { Metrics } from '../observability/metrics.js';
import type { IpcSharedState } from '../shared/ipc-client.js';
import { LocalSharedState } from '../shared/local-state.js';
import { runPrimary, sharedSettings } from './serve-primary.js';
import { connectWorker } from './serve-worker.js';

export function sessionSettings(config: Config): SessionSettings {
  const p = config.pop3;
  return {
    maxCommandLength: p.max_command_length,
    timeoutUnauthenticatedMs: p.timeout_unauthenticated * 1000,
    timeoutAuthenticatedMs: p.timeout_authenticated * 1000,
    lockMode: p.lock_mode,
    lastCommand: p.last_command,
    maxBadCommands: p.max_bad_commands,
    maxAuthFailures: p.max_auth_failures,
    hostname: serverHostname(config),
    apop: config.auth.apop,
    mechanisms: config.auth.mechanisms,
    masterUsers: config.auth.master_users,
    directoryMasters: config.auth.directory === 'ldap' && config.ldap.master_attribute !== '',
    loginTimeoutMs: p.login_timeout * 1000,
    protocolLog: config.log.protocol,
    workarounds: p.workarounds,
    deleteMode: p.delete_mode,
  };
}

/**
 * R-X16: `server.workers`, with 0 meaning one per available core. The memory store keeps mail in
 * one process's memory, so with it one process serves everything.
 */
export function workerCount(config: Config): number {
  if (config.storage.backend === 'memory') return 1;
  return config.server.workers === 0 ? availableParallelism() : config.server.workers;
}

/** A worker process of a multi-process server (R-X16). */
export interface WorkerRole {
  readonly id: number;
  readonly shared: IpcSharedState;
}

/** `reloadConfig` reads the configuration again for SIGHUP (`poplar reload`). */
export async function runServe(config: Config, reloadConfig?: () => Config): Promise<void> {
  if (cluster.isWorker) {
    const id = cluster.worker!.id;
    const logger = createServeLogger(config.log.level, id);
    await serve(config, logger, undefined, { id, shared: await connectWorker() });
    logger.info({ event: 'stopped' }, 'stopped');
    logger.flush();
    // The IPC channel keeps a worker alive; without it the process ends once its log is written.
    if (process.connected) process.disconnect();
    return;
  }
  const workers = workerCount(config);
  const logger = createServeLogger(config.log.level, workers > 1 ? 'primary' : undefined);
  // First: a second server on the same pid file stops here, before it touches anything.
  const pidFile = config.server.pid_file === '' ? undefined : await acquirePidFile(config.server.pid_file);
  try {
    if (workers > 1) {
      await checkDatabase(config);
      const directory = await openDirectory(config, (message) => logger.warn({ event: 'directory_entry_skipped' }, message));
      const store = createStore(config, logger);
      await storeReady(store);
      await firstRun(config, directory, store, logger);
      await runPrimary({ config, logger, workers, directory, store, ...(reloadConfig === undefined ? {} : { reloadConfig }) });
    } else {
      await serve(config, logger, reloadConfig);
    }
  } finally {
    await pidFile?.release();
  }
  logger.info({ event: 'stopped' }, 'stopped');
  logger.flush();
}

async function serve(config: Config, logger: Logger, reloadConfig?: () => Config, worker?: WorkerRole): Promise<void> {
  // Loaded here, not at the top: a multi-process server's primary never serves POP3 or LMTP itself.
  const [{ startServer }, { LmtpListener }] = await Promise.all([import('../server.js'), import('../delivery/lmtp/lmtp-listener.js')]);
  await checkDatabase(config);
  const directory = await openDirectory(config, (message) => logger.warn({ event: 'directory_entry_skipped' }, message));
  const store = createStore(config, logger);
  await storeReady(store);
  if (worker === undefined) await firstRun(config, directory, store, logger);

  const security = await loadSecurity(config, logger);
  const policy = createPolicies(config, directory);
  // R-X17: on PostgreSQL the per-user cap and the failed-login counters are the cluster's; each
  // process (a worker too) asks the database itself, the node's own caps and cache stay local.
  const clusterState = await createClusterState(config, worker?.shared ?? new LocalSharedState(sharedSettings(config)), sharedSettings(config));
  const sharedState = clusterState ?? worker?.shared;
  const server = await startServer({
    ...operationsOptions(config),
    listen: config.pop3.listen.map(parseListen),
    tls: security.tls,
    tlsListen: security.tlsListen,
    tokens: security.tokens,
    gssapi: await createGssapi(config, logger),
    settings: sessionSettings(config),
    directory,
    store,
    logger,
    scryptCost: config.auth.scrypt_cost,
    policy,
    pollState: createPollState(config, worker !== undefined),
    serverSecret: await loadServerSecret(config.server.data_dir),
    ...(sharedState === undefined ? {} : { sharedState }),
    ...(worker === undefined ? {} : { sessionIdPrefix: sessionIdPrefix(worker.id) }),
  });
  const lmtp = new LmtpListener(createAgent(config, store, directory, logger, policy), {
    hostname: serverHostname(config),
    maxMessageSize: config.lmtp.max_message_size,
    maxRecipients: config.lmtp.max_recipients,
  }, logger);
  await lmtp.listen(config.lmtp.listen.map(parseListen));
  // One process: the admin listener is here. With workers the primary serves it (serve-primary.ts).
  const admin = worker === undefined
    ? await startAdmin({ config, server, directory, policies: policy, store, logger }).catch(async (e: unknown) => {
      await Promise.all([server.close(), lmtp.close()]);
      await store.close();
      throw e;
    })
    : undefined;
  // The primary sweeps for all workers (R-X16).
  const sweeper = worker === undefined ? createSweeper(config, store, directory, logger, undefined, policy) : undefined;
  let sweepInterval = config.retention.sweep_interval;
  sweeper?.start(sweepInterval * 1000);
  const applyToServer = (next: Config, tokens: SecurityReload['tokens']): void => {
    server.update(sessionSettings(next), { ...operationsOptions(next), ...(tokens === undefined ? {} : { tokens }) });
    clusterState?.configure(sharedSettings(next));
    policy.setDefaults(defaultsFrom(next));
    logger.level = next.log.level;
  };
  let operations: Operations;
  if (worker === undefined) {
    operations = await startOperations({
      config,
      server,
      logger,
      ...(reloadConfig === undefined ? {} : { reloadConfig }),
      reloadSecurity: (next) => security.reload(next),
      apply: (next, reloaded) => {
        applyToServer(next, reloaded.tokens);
        if (sweeper !== undefined && next.retention.sweep_interval !== sweepInterval) {
          sweepInterval = next.retention.sweep_interval;
          void sweeper.stop(); // clears the timer at once; a run in progress finishes
          sweeper.start(sweepInterval * 1000);
        }
      },
    });
  } else {
    operations = serveWorkerRequests(worker, server, config, logger, (next) => security.reload(next), applyToServer);
  }

  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ event: 'shutdown', signal, sessions: server.sessionCount }, 'shutting down');
      void Promise.all([server.close(), lmtp.close(), sweeper?.stop(), operations.stop(), admin?.close()])
        .then(() => Promise.all([store.close(), directory.close?.(), clusterState?.close()]))
        .then(() => closePostgres())
        .catch((err: unknown) => logger.error({ err }, 'shutdown failed'))
        .finally(resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    if (worker !== undefined) {
      // The primary reloads (it sends the configuration); a hang-up of the terminal is not for us.
      process.on('SIGHUP', () => undefined);
      // The primary is gone: its state with it, so every limit fails closed; stop at once.
      process.once('disconnect', () => {
        worker.shared.close();
        stop('disconnect');
      });
      // R-X17: the primary gives back this worker's cluster-wide slots at once if it dies (holder).
      process.send?.({ t: 'ready', ...(clusterState === undefined ? {} : { holder: clusterState.holder }) });
    }
  });
}

/**
 * A worker's answers to the primary's requests (R-X16): reload, metrics, and what the primary's
 * admin listener asks (admin/across-workers.ts: sessions, end-session, failures, activity; the
 * per-minute history is counted here when `admin.listen` is set).
 */
function serveWorkerRequests(
  worker: WorkerRole,
  server: PoplarServer,
  config: Config,
  logger: Logger,
  reloadSecurity: (next: Config) => Promise<SecurityReload>,
  apply: (next: Config, tokens: SecurityReload['tokens']) => void,
): Operations {
  const metrics = new Metrics();
  worker.shared.handle('metrics', () => metrics.snapshot());
  // R-X13, R-X16: a stop's first step (serve-primary.ts stopWorkers): answered once the sockets are closed.
  worker.shared.handle('stop-accepting', () => {
    server.stopAccepting();
    return null;
  });
  worker.shared.handle('reload', async (body) => {
    const next = body as Config;
    const reloaded = await reloadSecurity(next);
    apply(next, reloaded.tokens);
    logger.info({ event: 'config_applied', errors: reloaded.errors }, 'configuration reloaded by the primary applied');
    return { errors: reloaded.errors, restart: reloaded.restart };
  });
  const history = config.admin.listen === '' ? undefined : new CounterHistory();
  for (const [kind, answer] of Object.entries(workerAnswers(inProcessSessions(server), () => server.throttle.recent(), history))) {
    worker.shared.handle(kind, answer);
  }
  return {
    stop: async () => {
      metrics.close();
      history?.close();
    },
  };
}

/**
 * On an empty users file (`auth.directory = "passwd-file"`), creates `server.first_run_user` with a random password, shows the
 * password once on the terminal (never in the log), and drops a welcome message in its maildrop.
 */
async function firstRun(config: Config, directory: Directory, store: MailStore, logger: Logger): Promise<void> {
  const name = config.server.first_run_user;
  // A directory server's users are its administrators' business.
  if (!(directory instanceof PasswdFile) || name === '' || (await directory.list()).length > 0) return;
  const password = randomBytes(12).toString('base64url');
  const made = await makeCredentials(password, { cost: config.auth.scrypt_cost, needs: needsFor(config.auth.mechanisms, config.auth.apop) });
  await directory.add(name, made.password, made.credentials);
  await store.deliver(name, Buffer.from(welcomeMessage(name, serverHostname(config))));
  logger.info({ event: 'first_run', user: name, users: directory.where }, 'created the first user');
  const first = config.pop3.listen[0];
  const { host, port } = first === undefined ? { host: '127.0.0.1', port: 110 } : parseListen(first);
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  process.stdout.write(
    [
      '',
      `  poplar: first run. Created user "${name}" with password: ${password}`,
      '  This password is shown only once. Change it with: poplar user passwd ' + name,
      `  Try it:  curl pop3://${name}:${password}@${shown}:${port}/1`,
      '',
      '',
    ].join('\n'),
  );
}

function welcomeMessage(user: string, host: string): string {
  const date = new Date().toUTCString().replace('GMT', '+0000');
  return [
    `From: poplar <postmaster@${host}>`,
    `To: ${user}@${host}`,
    'Subject: Welcome to poplar',
    `Date: ${date}`,
    `Message-ID: <${randomBytes(8).toString('hex')}.welcome@${host}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    `Hello ${user},`,
    '',
    'This message was put in your maildrop when poplar started for the first time.',
    'If you can read it, your POP3 client and the server are talking.',
    '',
    'Add users with `poplar user add NAME`; see README.md for more.',
    '',
  ].join('\r\n');
}

/**
 * `poplar serve`: the composition root. Picks the concrete user directory and mail store from
 * the configuration, performs the first-run set-up on an empty data folder, starts the listeners
 * (POP3, and LMTP when `lmtp.listen` is set) and the retention sweeper, and stops cleanly on
 * SIGINT/SIGTERM (sessions are closed without UPDATE: nothing is deleted).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostname as osHostname } from 'node:os';
import { PasswdFile } from '../auth/passwd-file.js';
import { makeCredentials, needsFor } from '../auth/credentials.js';
import { parseListen, type Config } from '../config/load.js';
import { createServeLogger, type Logger } from '../observability/logger.js';
import { startServer } from '../server.js';
import type { SessionSettings } from '../session/context.js';
import type { MailStore } from '../storage/mail-store.js';
import { MaildirStore } from '../storage/maildir/maildir-store.js';
import { MemoryMailStore } from '../storage/memory/memory-store.js';
import { DeliveryAgent } from '../delivery/agent.js';
import { LmtpListener } from '../delivery/lmtp/lmtp-listener.js';
import { RetentionSweeper } from '../policy/retention.js';
import { acquirePidFile, loadSecurity } from './serve-security.js';
import { operationsOptions, startOperations } from './serve-operations.js';
import { policyServerOptions } from './serve-policy.js';
import { defaultsFrom, UserPolicies } from '../policy/user-policy.js';

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
    hostname: p.hostname === '' ? osHostname() : p.hostname,
    apop: config.auth.apop,
    mechanisms: config.auth.mechanisms,
    masterUsers: config.auth.master_users,
    loginTimeoutMs: p.login_timeout * 1000,
    protocolLog: config.log.protocol,
    workarounds: p.workarounds,
    deleteMode: p.delete_mode,
  };
}

/** `logger`: where the Maildir store reports the symbolic links it leaves out. */
export function createStore(config: Config, logger?: Logger): MailStore {
  if (config.storage.backend === 'memory') return new MemoryMailStore();
  const template = config.storage.maildir_path;
  return new MaildirStore({
    path: (mailbox) => template.replaceAll('%u', () => mailbox),
    reads: config.storage.maildir_reads,
    dirtyWindowMs: config.storage.maildir_dirty_window,
    ...(logger === undefined ? {} : { logger }),
  });
}

export function createPolicies(config: Config): UserPolicies {
  return new UserPolicies(config.policy.users_file, defaultsFrom(config));
}

/** `policies`: the server's shared instance, so a reload's new defaults reach delivery too. */
export function createAgent(config: Config, store: MailStore, directory: PasswdFile, logger: Logger, policies = createPolicies(config)): DeliveryAgent {
  return new DeliveryAgent({
    store,
    directory,
    policies,
    logger,
    hostname: sessionSettings(config).hostname,
    overQuota: config.quota.over_quota,
    warnPercent: config.quota.warn_percent,
    recipientDelimiter: config.lmtp.recipient_delimiter,
  });
}

/** Every maildrop retention looks at: each user's own and the mailboxes granted to users (R-K3). */
export async function allMailboxes(directory: PasswdFile): Promise<string[]> {
  const users = await directory.list();
  return [...new Set(users.flatMap((u) => [u.name, ...u.grants]))].sort();
}

export function createSweeper(
  config: Config, store: MailStore, directory: PasswdFile, logger: Logger, now?: () => number, policies = createPolicies(config),
): RetentionSweeper {
  return new RetentionSweeper({
    store,
    policies,
    mailboxes: () => allMailboxes(directory),
    logger,
    ...(now === undefined ? {} : { now }),
  });
}

/** `reloadConfig` reads the configuration again for SIGHUP (`poplar reload`). */
export async function runServe(config: Config, reloadConfig?: () => Config): Promise<void> {
  const logger = createServeLogger(config.log.level);
  // First: a second server on the same pid file stops here, before it touches anything.
  const pidFile = config.server.pid_file === '' ? undefined : await acquirePidFile(config.server.pid_file);
  try {
    await serve(config, logger, reloadConfig);
  } finally {
    await pidFile?.release();
  }
  logger.info({ event: 'stopped' }, 'stopped');
  logger.flush();
}

async function serve(config: Config, logger: Logger, reloadConfig?: () => Config): Promise<void> {
  const directory = new PasswdFile(config.auth.users_file);
  const store = createStore(config, logger);
  await firstRun(config, directory, store, logger);

  const listen = config.pop3.listen.map(parseListen);
  const security = await loadSecurity(config, logger);
  const policy = createPolicies(config);
  const server = await startServer({
    ...security.serverOptions,
    listen,
    settings: sessionSettings(config),
    directory,
    store,
    logger,
    scryptCost: config.auth.scrypt_cost,
    policy,
    ...operationsOptions(config),
    serverSecret: await loadServerSecret(config.server.data_dir),
    ...policyServerOptions(config),
  });
  const lmtp = new LmtpListener(createAgent(config, store, directory, logger, policy), {
    hostname: sessionSettings(config).hostname,
    maxMessageSize: config.lmtp.max_message_size,
    maxRecipients: config.lmtp.max_recipients,
  }, logger);
  await lmtp.listen(config.lmtp.listen.map(parseListen));
  const sweeper = createSweeper(config, store, directory, logger, undefined, policy);
  let sweepInterval = config.retention.sweep_interval;
  sweeper.start(sweepInterval * 1000);
  const operations = await startOperations({
    config,
    server,
    logger,
    ...(reloadConfig === undefined ? {} : { reloadConfig }),
    reloadSecurity: (next) => security.reload(next),
    apply: (next, reloaded) => {
      server.update(sessionSettings(next), { ...operationsOptions(next), ...(reloaded.tokens === undefined ? {} : { tokens: reloaded.tokens }) });
      policy.setDefaults(defaultsFrom(next));
      logger.level = next.log.level;
      if (next.retention.sweep_interval !== sweepInterval) {
        sweepInterval = next.retention.sweep_interval;
        void sweeper.stop(); // clears the timer at once; a run in progress finishes
        sweeper.start(sweepInterval * 1000);
      }
    },
  });

  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ event: 'shutdown', signal, sessions: server.sessionCount }, 'shutting down');
      void Promise.all([server.close(), lmtp.close(), sweeper.stop(), operations.stop()])
        .then(() => store.close())
        .catch((err: unknown) => logger.error({ err }, 'shutdown failed'))
        .finally(resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}

/**
 * On an empty user directory, creates `server.first_run_user` with a random password, shows the
 * password once on the terminal (never in the log), and drops a welcome message in its maildrop.
 */
async function firstRun(config: Config, directory: PasswdFile, store: MailStore, logger: Logger): Promise<void> {
  const name = config.server.first_run_user;
  if (name === '' || (await directory.list()).length > 0) return;
  const password = randomBytes(12).toString('base64url');
  const made = await makeCredentials(password, { cost: config.auth.scrypt_cost, needs: needsFor(config.auth.mechanisms, config.auth.apop) });
  await directory.add(name, made.password, made.credentials);
  await store.deliver(name, Buffer.from(welcomeMessage(name, sessionSettings(config).hostname)));
  logger.info({ event: 'first_run', user: name, usersFile: config.auth.users_file }, 'created the first user');
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

/**
 * The secret behind the fake SCRAM salts of unknown users, kept in `<data_dir>/server-secret`
 * (created once, mode 0600) so they look the same after a restart, as real users' salts do.
 */
async function loadServerSecret(dataDir: string): Promise<Buffer> {
  const path = join(dataDir, 'server-secret');
  const existing = await readFile(path).catch(() => undefined);
  if (existing !== undefined && existing.length >= 32) return existing;
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const secret = randomBytes(32);
  await writeFile(path, secret, { mode: 0o600, flag: 'w' });
  return secret;
}

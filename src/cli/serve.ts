/**
 * `poplar serve`: the composition root. Picks the concrete user directory and mail store from
 * the configuration, performs the first-run set-up on an empty data folder, starts the listeners
 * and stops cleanly on SIGINT/SIGTERM (sessions are closed without UPDATE: nothing is deleted).
 */
import { randomBytes } from 'node:crypto';
import { hostname as osHostname } from 'node:os';
import { PasswdFile } from '../auth/passwd-file.js';
import { hashPassword } from '../auth/password.js';
import { parseListen, type Config } from '../config/load.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { startServer } from '../server.js';
import type { SessionSettings } from '../session/context.js';
import type { MailStore } from '../storage/mail-store.js';
import { MaildirStore } from '../storage/maildir/maildir-store.js';
import { MemoryMailStore } from '../storage/memory/memory-store.js';

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
  };
}

export function createStore(config: Config): MailStore {
  if (config.storage.backend === 'memory') return new MemoryMailStore();
  const template = config.storage.maildir_path;
  return new MaildirStore({ path: (mailbox) => template.replaceAll('%u', mailbox) });
}

export async function runServe(config: Config): Promise<void> {
  const logger = createLogger(config.log.level);
  const directory = new PasswdFile(config.auth.users_file);
  const store = createStore(config);
  await firstRun(config, directory, store, logger);

  const listen = config.pop3.listen.map(parseListen);
  const server = await startServer({
    listen,
    settings: sessionSettings(config),
    directory,
    store,
    logger,
    scryptCost: config.auth.scrypt_cost,
  });

  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ event: 'shutdown', signal, sessions: server.sessionCount }, 'shutting down');
      void server
        .close()
        .then(() => store.close())
        .finally(resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  logger.info({ event: 'stopped' }, 'stopped');
  logger.flush();
}

/**
 * On an empty user directory, creates `server.first_run_user` with a random password, shows the
 * password once on the terminal (never in the log), and drops a welcome message in its maildrop.
 */
async function firstRun(config: Config, directory: PasswdFile, store: MailStore, logger: Logger): Promise<void> {
  const name = config.server.first_run_user;
  if (name === '' || (await directory.list()).length > 0) return;
  const password = randomBytes(12).toString('base64url');
  await directory.add(name, await hashPassword(password, { cost: config.auth.scrypt_cost }));
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

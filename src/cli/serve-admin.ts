/**
 * `poplar serve`'s admin listener (R-X21), when `admin.listen` is set: the admin API and console
 * over this process's sessions, failed logins and counters (one process), or over the sources the
 * primary gives (R-X16: admin/across-workers.ts asks every worker), and the server's directory,
 * policies and store. Loaded on demand, so a server without it never loads fastify.
 */
import type { AdminDirectory } from '../auth/directory.js';
import { makeCredentials, needsFor } from '../auth/credentials.js';
import type { AdminContext } from '../admin/context.js';
import { parseListen, type Config } from '../config/load.js';
import type { Logger } from '../observability/logger.js';
import type { UserPolicies } from '../policy/user-policy.js';
import type { PoplarServer } from '../server.js';
import type { MailStore } from '../storage/mail-store.js';
import { CliError } from './common.js';

export interface AdminListener {
  close(): Promise<void>;
}

/** What the API reads of the running server. */
export type AdminSources = Pick<AdminContext, 'sessions' | 'failures' | 'activity'>;

export async function startAdmin(opts: {
  readonly config: Config;
  /**
   * One process: its server (the API reads its sessions, its throttle and a CounterHistory of this
   * process's events); a primary: the sources that ask its workers.
   */
  readonly server: PoplarServer | AdminSources;
  readonly directory: AdminDirectory;
  readonly policies: UserPolicies;
  readonly store: MailStore;
  readonly logger: Logger;
}): Promise<AdminListener | undefined> {
  const { config, logger } = opts;
  if (config.admin.listen === '') return undefined;
  const [{ startAdminServer, AdminListenError }, { AdminTokens }, { CounterHistory }, { inProcessActivity, inProcessFailures, inProcessSessions }] = await Promise.all([
    import('../admin/api-server.js'), import('../admin/tokens.js'), import('../admin/history.js'), import('../admin/sources.js'),
  ]);
  const a = config.admin;
  if ((a.tls_cert === '') !== (a.tls_key === '')) throw new CliError('admin.tls_cert and admin.tls_key go together: set both or neither');
  const { host, port } = parseListen(a.listen);
  const live = opts.server;
  let history: InstanceType<typeof CounterHistory> | undefined;
  let sources: AdminSources;
  if ('openSessions' in live) {
    history = new CounterHistory();
    sources = { sessions: inProcessSessions(live), failures: inProcessFailures(live.throttle), activity: inProcessActivity(history) };
  } else sources = live;
  const admin = await startAdminServer({
    host,
    port,
    ...(a.tls_cert === '' ? {} : { tls: { cert: a.tls_cert, key: a.tls_key } }),
    tokens: new AdminTokens(a.tokens_file),
    failureDelay: { baseMs: config.auth.failure_delay, maxMs: config.auth.failure_delay_max, windowMs: config.auth.failure_window * 1000 },
    context: {
      ...sources,
      directory: opts.directory,
      policies: opts.policies,
      store: opts.store,
      hashPassword: (pw) => makeCredentials(pw, { cost: config.auth.scrypt_cost, needs: needsFor(config.auth.mechanisms, config.auth.apop) }),
      logger,
    },
  }).catch((e: unknown) => {
    history?.close();
    if (e instanceof AdminListenError) throw new CliError(e.message);
    throw new CliError(`cannot start the admin listener on ${a.listen}: ${(e as Error).message}`);
  });
  const { address, port: bound } = admin.address();
  logger.info({ event: 'listening', protocol: admin.secure ? 'https' : 'http', address, port: bound }, 'admin API and console');
  return {
    async close() {
      history?.close();
      await admin.close();
    },
  };
}

/**
 * The security half of `poplar serve` (R-X3, R-X4, R-X13): loads the TLS certificate and the
 * OAuth issuers' keys from the configuration, and loads them again from a reloaded configuration
 * (SIGHUP, `poplar reload`) without dropping a session: new connections get the new certificate,
 * key, lowest TLS version and client CA, new sessions the new issuers. A reload that fails keeps
 * what was loaded and says why. Also the pid file: one live server per pid file.
 */
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rm, rmdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TokenVerifier } from '../auth/sasl/token-verifier.js';
import { parseListen, type Config } from '../config/load.js';
import type { Logger } from '../observability/logger.js';
import { TlsProvider, type TlsFiles } from '../net/tls.js';
import type { PoplarServerOptions } from '../server.js';
import { CliError } from './common.js';

/** What a reload of the security settings did. */
export interface SecurityReload {
  /** Files that did not load (the previous ones stay in use). */
  readonly errors: string[];
  /** Keys whose change needs a restart (a certificate appeared while TLS was off). */
  readonly restart: string[];
  /** The token verifier new sessions use: undefined when `oauth.issuers` is empty. */
  readonly tokens: TokenVerifier | undefined;
}

export interface Security {
  /** What startServer needs: TLS, the POP3S addresses, the token verifier. */
  readonly serverOptions: Pick<PoplarServerOptions, 'tls' | 'tlsListen' | 'tokens'>;
  /** Loads certificate, key, CA and JWKS again, from the files `next` names. */
  reload(next: Config): Promise<SecurityReload>;
}

const tlsFiles = (c: Config): TlsFiles => ({ cert: c.tls.cert, key: c.tls.key, minVersion: c.tls.min_version, clientCa: c.tls.client_ca });

/** `oauth.*` as TokenVerifier options; undefined when no issuer is configured. */
function tokenOptions(c: Config): Parameters<typeof TokenVerifier.create>[0] | undefined {
  if (c.oauth.issuers.length === 0) return undefined;
  const issuers = c.oauth.issuers.map((entry) => {
    const [issuer, jwks] = entry.split(' ') as [string, string];
    return { issuer, jwks };
  });
  return { issuers, audience: c.oauth.audience, userClaim: c.oauth.user_claim };
}

export async function loadSecurity(config: Config, logger: Logger): Promise<Security> {
  let tls: TlsProvider | undefined;
  if (existsSync(config.tls.cert)) {
    tls = await TlsProvider.load(tlsFiles(config)).catch((e: unknown) => {
      throw new CliError(`cannot load the TLS certificate ${config.tls.cert} / key ${config.tls.key}: ${(e as Error).message}`);
    });
  } else {
    logger.warn({ event: 'tls_off', cert: config.tls.cert }, 'no certificate: POP3S and STLS are off (make one with "poplar cert")');
  }
  let tokenConfig = tokenOptions(config);
  let tokens = tokenConfig === undefined
    ? undefined
    : await TokenVerifier.create(tokenConfig).catch((e: unknown) => {
      throw new CliError(`cannot load oauth.issuers keys: ${(e as Error).message}`);
    });

  const reloadTokens = async (next: Config): Promise<void> => {
    const wanted = tokenOptions(next);
    if (JSON.stringify(wanted) === JSON.stringify(tokenConfig)) {
      await tokens?.reload();
      return;
    }
    tokens = wanted === undefined ? undefined : await TokenVerifier.create(wanted);
    tokenConfig = wanted;
  };

  return {
    serverOptions: {
      ...(tls === undefined ? {} : { tls, tlsListen: config.pop3.tls_listen.map(parseListen) }),
      ...(tokens === undefined ? {} : { tokens }),
    },
    async reload(next) {
      const restart: string[] = [];
      let reloadTls: Promise<void> | undefined;
      if (tls !== undefined) reloadTls = tls.reload(tlsFiles(next));
      else if (existsSync(next.tls.cert)) restart.push('tls.cert');
      const results = await Promise.allSettled([reloadTls, reloadTokens(next)]);
      const errors = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => String(r.reason));
      return { errors, restart, tokens };
    },
  };
}

export interface PidFile {
  /** Removes the pid file if it still holds this process's id. */
  release(): Promise<void>;
}

/** Whether `pid` is a live `poplar serve` (Linux: its command line; elsewhere any live process). */
async function livePoplar(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => undefined);
  if (cmdline === undefined) return process.platform !== 'linux' || existsSync(`/proc/${pid}`);
  const args = cmdline.split('\0');
  return args.includes('serve') && args.some((a) => /(?:^|\/)poplar$|\/cli\/main\.js$/.test(a));
}

/**
 * Writes this process's id to `path`, created with O_EXCL so that of two servers starting at once
 * only one gets it. A pid file of a live poplar makes this throw a CliError; one left by a dead
 * process is replaced. The check-and-replace runs under a lock directory (`path.lock`, mkdir is
 * atomic), so two starting servers never both take a stale file over.
 */
export async function acquirePidFile(path: string): Promise<PidFile> {
  await mkdir(dirname(path), { recursive: true });
  const lock = `${path}.lock`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // A lock is held for milliseconds; one older than 10 s was left by a crash.
      const age = Date.now() - ((await stat(lock).catch(() => undefined))?.mtimeMs ?? Date.now());
      if (age > 10_000) await rmdir(lock).catch(() => undefined);
      else if (Date.now() > deadline) throw new CliError(`${lock} is held by another starting server`);
      else await new Promise((r) => setTimeout(r, 20));
    }
  }
  try {
    for (;;) {
      try {
        const file = await open(path, 'wx', 0o644);
        await file.writeFile(`${process.pid}\n`);
        await file.close();
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const text = await readFile(path, 'utf8').catch(() => '');
      const pid = Number(text.trim());
      if (Number.isInteger(pid) && pid > 1 && pid !== process.pid && (await livePoplar(pid))) {
        throw new CliError(`poplar is already running with pid ${pid} (${path}); stop it first or use another server.data_dir / server.pid_file`);
      }
      await rm(path, { force: true }); // stale: its process is gone
    }
  } finally {
    await rmdir(lock).catch(() => undefined);
  }
  return {
    async release() {
      // Remove only our own pid file: another server may have taken the path over.
      const text = await readFile(path, 'utf8').catch(() => '');
      if (text.trim() === String(process.pid)) await rm(path, { force: true });
    },
  };
}

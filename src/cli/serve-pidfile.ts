/**
 * The pid file of `poplar serve`: one live server per pid file (`server.pid_file`), read by
 * `poplar reload`. TLS and the OAuth keys are loaded in compose.ts (loadSecurity).
 */
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CliError } from './common.js';
import { FileLock, LOCK_WAIT_MS } from '../storage/file-lock.js';

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
 * process is replaced. The check-and-replace runs under the lock file `path.lock`.
 */
export async function acquirePidFile(path: string): Promise<PidFile> {
  await mkdir(dirname(path), { recursive: true });
  // The check-and-replace runs under FileLock (the lock the uidlist and the admin files use: a
  // lock whose holder died is broken at once), so two starting servers never both take it over.
  const lockPath = `${path}.lock`;
  const lock = await FileLock.acquire(lockPath, LOCK_WAIT_MS);
  if (lock === undefined) throw new CliError(`${lockPath} is held by another starting server`);
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
    await lock.release();
  }
  return {
    async release() {
      // Remove only our own pid file: another server may have taken the path over.
      const text = await readFile(path, 'utf8').catch(() => '');
      if (text.trim() === String(process.pid)) await rm(path, { force: true });
    },
  };
}

/**
 * The reload answer beside the pid file: written by the server after each reload
 * (cli/serve-operations.ts), read by `poplar reload` (cli/reload.ts).
 */
export interface ReloadStatus {
  readonly pid: number;
  /** Reloads this server process has done, from 1. */
  readonly count: number;
  /** The configuration was read and applied (certificates may still have failed: `errors`). */
  readonly applied: boolean;
  /** Changed keys that only a restart applies. */
  readonly restartNeeded: readonly string[];
  readonly errors: readonly string[];
}

export const reloadStatusPath = (pidFile: string): string => `${pidFile}.reload`;

/**
 * Read-modify-write of the files the admin tools change while a server reads them: the users file
 * (auth/passwd-file.ts) and the per-user policy file (policy/user-policy.ts).
 *
 * - Readers (the server, `poplar deliver`) take no lock: every write replaces the file by
 *   rename(2), so a reader sees the old file or the new one, whole.
 * - Writers (every `poplar user|grant|quota|retention` command, and `serve` creating the first
 *   user) take the lock file `<file>.lock` from before the read until after the rename, so edits
 *   made at the same time are applied one after the other and none is lost.
 * - The lock is FileLock, the one the Maildir uidlist uses (Node has no flock(2)): the lock file
 *   appears whole through link(2) and holds `<pid> <host> <time> <token>`; a lock whose holder
 *   died on this host, or that nobody refreshed for LOCK_STALE_MS (30 s), is broken, so a command
 *   killed while holding it delays the next one by at most that much (usually not at all).
 * - The new file keeps the old one's owner, group and mode: `poplar user passwd` run as root must
 *   not leave a root-owned 0600 users file that the `poplar` service user can no longer read.
 *   A file that did not exist is created 0600; run as root, it gets the owner and group of its
 *   directory (the data directory the service user owns), else the caller's.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { dirname } from 'node:path';
import { FileLock, LOCK_WAIT_MS } from './file-lock.js';
import { fsyncDir } from './maildir/maildir-dir.js';

/** An edit that could not be made: the lock stayed held, or the owner could not be kept. */
export class AdminFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AdminFileError';
  }
}

const errCode = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;

/**
 * Reads `path` (undefined when missing) under its lock, lets `edit` return the new text and a
 * result, writes the text atomically and returns the result. When `edit` throws, nothing is
 * written.
 */
export async function editFile<T>(
  path: string,
  edit: (text: string | undefined) => { text: string; result: T },
  waitMs = LOCK_WAIT_MS,
): Promise<T> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const lockPath = `${path}.lock`;
  const lock = await FileLock.acquire(lockPath, waitMs);
  if (lock === undefined) {
    throw new AdminFileError(`${path} is being changed by another process (lock file ${lockPath}); try again`);
  }
  try {
    const old = await readWithStats(path);
    const { text, result } = edit(old?.text);
    await replace(path, text, old?.stats);
    return result;
  } finally {
    await lock.release();
  }
}

async function readWithStats(path: string): Promise<{ text: string; stats: Stats } | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if (errCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return { stats: await fh.stat(), text: await fh.readFile('utf8') };
  } finally {
    await fh.close();
  }
}

/** Writes `text` to a temporary file with the old file's owner and mode, fsyncs, renames it over `path`. */
async function replace(path: string, text: string, old: Stats | undefined): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      const owner = old ?? (process.getuid?.() === 0 ? await stat(dirname(path)) : undefined);
      if (owner !== undefined) await keepOwner(fh, path, owner);
      await fh.chmod(old === undefined ? 0o600 : old.mode & 0o7777);
      await fh.writeFile(text, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dirname(path));
}

async function keepOwner(fh: FileHandle, path: string, old: Pick<Stats, 'uid' | 'gid'>): Promise<void> {
  const mine = await fh.stat();
  if (mine.uid === old.uid && mine.gid === old.gid) return;
  try {
    await fh.chown(old.uid, old.gid);
  } catch (err) {
    if (errCode(err) !== 'EPERM') throw err;
    throw new AdminFileError(
      `cannot keep the owner ${old.uid}:${old.gid} of ${path}: run this command as that user or as root`,
    );
  }
}

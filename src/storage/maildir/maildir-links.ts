/**
 * Symbolic links in a maildir are never followed. A maildir is writable by its owner (a shell
 * user, a mail client, an LDA running as that user), and poplar reads and writes it with the
 * rights of the server: a link `cur/x -> /etc/poplar/users` served by RETR, or a
 * `poplar-uidlist -> user-policy.toml` appended to by a delivery, would hand the owner files of
 * the server. So:
 * - every file is opened with O_NOFOLLOW (a link in the last component fails with ELOOP);
 * - listings take the directory entry's type and leave links out, logged once per file;
 * - the maildir root and its cur/, new/ and tmp/ are checked with lstat(2) to be directories;
 * - a message file opened for RETR is checked, through /proc/self/fd, to lie in cur/ or new/ of
 *   the real root: a cur/ swapped for a link to another directory after the listing (O_NOFOLLOW
 *   guards only the last component) is refused too. One readlink(2) of the descriptor just
 *   opened; where /proc is not mounted the check is skipped.
 */
import { closeSync, constants, lstatSync, openSync, readlinkSync } from 'node:fs';
import { lstat, open, readlink, realpath, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { StorageError } from '../../errors.js';
import { errCode } from './maildir-errors.js';

/** Added to the flags of every open(2) of a file in a maildir. */
export const NOFOLLOW = constants.O_NOFOLLOW;

/** The error open(2) gives for a link under O_NOFOLLOW (ELOOP on Linux, EMLINK on FreeBSD). */
export function isLinkError(err: unknown): boolean {
  const code = errCode(err);
  return code === 'ELOOP' || code === 'EMLINK';
}

/** Where the store reports the links it leaves out (a pino Logger fits). */
export interface MaildirLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
}

/** Paths already reported, so a link is logged once, not at every login. */
const reported = new Set<string>();
/** Reported paths remembered at most; past it the oldest are forgotten (and may be logged again). */
const MAX_REPORTED = 10_000;

/** Logs `path` (a symbolic link left out) unless this process already did. */
export function reportLink(log: MaildirLogger | undefined, path: string): void {
  if (log === undefined || reported.has(path)) return;
  reported.add(path);
  if (reported.size > MAX_REPORTED) reported.delete(reported.values().next().value!);
  log.warn({ event: 'maildir_symlink_skipped', path }, 'symbolic link in a maildir left out, not followed');
}

export function linkRefused(path: string): StorageError {
  return new StorageError('IO', `${path} is a symbolic link: not followed`);
}

/**
 * Throws unless `path` is a directory itself (lstat: not a link to one). A missing one is left
 * to the caller (ENOENT is rethrown as it is).
 */
export async function assertRealDir(path: string): Promise<void> {
  const st = await lstat(path);
  if (st.isSymbolicLink()) throw linkRefused(path);
  if (!st.isDirectory()) throw new StorageError('IO', `${path} is not a directory`);
}

/** assertRealDir with lstat(2) on the server thread (`storage.maildir_reads = "event-loop"`). */
export function assertRealDirSync(path: string): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) throw linkRefused(path);
  if (!st.isDirectory()) throw new StorageError('IO', `${path} is not a directory`);
}

/**
 * The maildir root with every link above it resolved (an administrator's `/var/mail ->
 * /srv/mail` is kept) and the root itself checked to be a directory, not a link.
 */
export async function realRootOf(root: string): Promise<string> {
  await assertRealDir(root);
  return `${await realpath(dirname(root))}/${basename(root)}`;
}

/** Whether /proc/self/fd names the files this process has open (Linux with /proc mounted). */
export const FD_PATHS = ((): boolean => {
  try {
    const fd = openSync('/', constants.O_RDONLY);
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === '/';
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
})();

/** Whether the open file `target` (readlink of its descriptor) is a file of realRoot/cur or realRoot/new. */
function inFolders(target: string, realRoot: string): boolean {
  if (target.length <= realRoot.length + 5 || !target.startsWith(realRoot)) return false;
  const folder = target.slice(realRoot.length, realRoot.length + 5);
  return (folder === '/cur/' || folder === '/new/') && !target.includes('/', realRoot.length + 5);
}

/** The check above for descriptor `fd`, on the calling thread. True where /proc is missing. */
export function fdInMaildirSync(fd: number, realRoot: string): boolean {
  return !FD_PATHS || inFolders(readlinkSync(`/proc/self/fd/${fd}`), realRoot);
}

/** The same through the thread pool. */
export async function fdInMaildir(fd: number, realRoot: string): Promise<boolean> {
  return !FD_PATHS || inFolders(await readlink(`/proc/self/fd/${fd}`), realRoot);
}

/**
 * open(2) of a file in a maildir with O_NOFOLLOW (and O_NONBLOCK: a FIFO put in its place does
 * not block); a symbolic link is refused with a StorageError saying so.
 */
export async function openNoFollow(path: string, flags: number): Promise<FileHandle> {
  try {
    return await open(path, flags | NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    throw isLinkError(err) ? linkRefused(path) : err;
  }
}

/**
 * Lock files for a maildrop, the users file, the poll state and the pid
 * file, shared with other processes (other poplar processes, an LDA) and with
 * concurrent sessions of this process. Which lock files a maildrop has, who takes them and for
 * how long: the lock table in maildir-maildrop.ts.
 *
 * - `FileLock`: a lock file that appears whole: its content is written to a private temporary
 *   file, which is then hard-linked to the lock's name (link(2) fails with EEXIST if the lock
 *   exists: atomic on local file systems and NFS). A process killed at any instant therefore
 *   never leaves an empty lock that only age could break. It holds `<pid> <host> <time ms> <token>`. The holder touches
 *   its mtime every STALE_MS / 3, so a lock is stale when its mtime is older than STALE_MS, or,
 *   written on this host, when its pid is dead, or when it carries this process's pid but a token
 *   this process does not hold (a previous process with the same pid, e.g. pid 1 in a container).
 *   Tokens are per module instance, one per process (worker threads take no locks), so a lock
 *   held by any maildrop registry of this process reads as live.
 * A waiter that announces itself (`{ announce: true }`: the uidlist's writers, whose holder takes
 * the lock again and again for delivery batches) touches `<lock>.waiting` on each failed try
 * (empty; created O_EXCL, touched with lutimes) and, once it takes the lock, removes it;
 * `FileLock.othersWaiting` tells the holder to let go for a moment. Other locks leave no mark. A
 * mark left by a waiter that gave up goes stale by its mtime and means nothing.
 * Lock files sit in a directory the maildrop's owner can write: none is ever followed if it is a
 * symbolic link (lstat, lutimes, O_NOFOLLOW; maildir-links.ts). A link in a lock's place reads
 * as an empty lock (stale only by age), and only the link itself is ever removed.
 * - `Mutex`: an in-process FIFO lock, so concurrent sessions of one process queue cheaply instead
 *   of polling the lock file.
 */
import { randomBytes } from 'node:crypto';
import { constants, lstatSync } from 'node:fs';
import { link, lstat, lutimes, open, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { StorageError } from '../errors.js';
import { errCode, ignoreEnoent } from './maildir/maildir-errors.js';
import { encodeHostname } from './maildir/maildir-filename.js';
import { isLinkError, NOFOLLOW } from './maildir/maildir-links.js';

/** A lock not refreshed for this long is stale (holders refresh it every STALE_MS / 3). */
export const LOCK_STALE_MS = 30_000;
/** How long a writer waits for the uidlist lock before failing with StorageError('IO'). */
export const LOCK_WAIT_MS = 10_000;
const BACKOFF_FIRST_MS = 2;
const BACKOFF_MAX_MS = 100;
/** The longest a waiter sleeps between two tries (the backoff's jitter is 0.5-1.5 times). */
export const LOCK_RETRY_MAX_MS = BACKOFF_MAX_MS * 1.5;
/**
 * An announcing waiter touches `<lock>.waiting` on each try; a holder that sees it touched this
 * recently lets go for a moment (`FileLock.othersWaiting`), so a process that takes the lock
 * again and again cannot starve one that polls.
 */
const WAITING_SUFFIX = '.waiting';
/**
 * A mark touched this recently counts as a waiter. A waiter touches it at least every
 * LOCK_RETRY_MAX_MS; the rest is room for a waiter whose timer fires late on a loaded machine.
 */
export const LOCK_WAITING_FRESH_MS = 1000;

/** The lock owner's host as written in lock files: the machine's name, never a configured one. */
export const LOCK_HOST = encodeHostname(hostname()).replace(/\s/g, '_');
/** Tokens of the locks this process holds now. */
const heldTokens = new Set<string>();

export interface AcquireOptions {
  /** While waiting, touch `<lock>.waiting` so a holder that checks `othersWaiting` lets go. */
  readonly announce?: boolean;
}

export class FileLock {
  private readonly heartbeat: NodeJS.Timeout;
  private released = false;

  private constructor(
    readonly path: string,
    private readonly content: string,
    private readonly token: string,
    private readonly identity: FileIdentity,
  ) {
    heldTokens.add(token);
    this.heartbeat = setInterval(() => {
      const now = new Date();
      lutimes(this.path, now, now).catch(() => {});
    }, LOCK_STALE_MS / 3);
    this.heartbeat.unref();
  }

  /**
   * Takes the lock, breaking a stale one, retrying with backoff for up to `waitMs` while a live
   * one is held. Resolves undefined if it is still held after that.
   */
  static async acquire(path: string, waitMs: number, opts: AcquireOptions = {}): Promise<FileLock | undefined> {
    const deadline = Date.now() + waitMs;
    let delay = BACKOFF_FIRST_MS;
    let announced = false;
    for (;;) {
      const token = randomBytes(8).toString('hex');
      const content = `${process.pid} ${LOCK_HOST} ${Date.now()} ${token}\n`;
      // Held from before the link makes the file visible: another acquire in this process that
      // reads it meanwhile must not judge it a dead previous process's lock and break it.
      heldTokens.add(token);
      const identity = await createWhole(path, content, token).catch((err: unknown) => {
        heldTokens.delete(token);
        throw err;
      });
      if (identity !== undefined) {
        if (announced) await unlink(path + WAITING_SUFFIX).catch(() => {}); // other waiters touch it again
        return new FileLock(path, content, token, identity);
      }
      heldTokens.delete(token);
      if (await breakIfStale(path)) continue;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      if (opts.announce === true) {
        await markWaiting(path + WAITING_SUFFIX);
        announced = true;
      }
      await sleep(Math.min(delay * (0.5 + Math.random()), left));
      delay = Math.min(delay * 2, BACKOFF_MAX_MS);
    }
  }

  /** Whether another process waits for the lock at `path` now (it touched the waiting mark lately). */
  static async othersWaiting(path: string): Promise<boolean> {
    const st = await lstat(path + WAITING_SUFFIX).catch(() => undefined);
    return st !== undefined && Date.now() - st.mtimeMs < LOCK_WAITING_FRESH_MS;
  }

  /** Takes the lock or fails with StorageError('IO') after `waitMs` (default LOCK_WAIT_MS). */
  static async acquireOrFail(path: string, waitMs = LOCK_WAIT_MS, opts: AcquireOptions = {}): Promise<FileLock> {
    const lock = await FileLock.acquire(path, waitMs, opts);
    if (lock === undefined) throw new StorageError('IO', `timed out waiting for lock ${path}`);
    return lock;
  }

  /**
   * Removes the lock file if it is still ours (a holder judged stale may have lost it). Ours is
   * the file we created: same inode and same birth time (one stat(2)); where the file system
   * keeps no birth time, the content (with our token) is compared instead.
   */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.heartbeat);
    // The token stays held until the file is gone: an acquire in this process that reads our
    // lock meanwhile must not judge it a dead previous process's, and unlink what replaced it.
    try {
      await this.unlinkIfOurs();
    } finally {
      heldTokens.delete(this.token);
    }
  }

  private async unlinkIfOurs(): Promise<void> {
    if (this.identity.birthtimeNs !== 0n) {
      const st = await lstat(this.path, { bigint: true }).catch(ignoreEnoent);
      if (st === undefined) return;
      if (st.ino === this.identity.ino && st.birthtimeNs === this.identity.birthtimeNs) {
        await unlink(this.path).catch(ignoreEnoent);
        return;
      }
      // Not provably ours by identity. Where statx is unavailable libuv reports the ctime as the
      // birth time, and link/utimes change it: the content (our token) decides, as below.
    }
    const current = await readIfExists(this.path);
    if (current === this.content) await unlink(this.path).catch(ignoreEnoent);
  }
}

/** Inode and birth time (0 where the file system keeps none) of a lock file we created. */
interface FileIdentity {
  readonly ino: bigint;
  readonly birthtimeNs: bigint;
}

/** Creates `path` holding `content`, whole, unless it exists; its identity if this call created it. */
async function createWhole(path: string, content: string, token: string): Promise<FileIdentity | undefined> {
  const tmp = `${path}.${token}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  let identity: FileIdentity;
  try {
    await fh.writeFile(content);
    const st = await fh.stat({ bigint: true });
    identity = { ino: st.ino, birthtimeNs: st.birthtimeNs };
  } finally {
    await fh.close();
  }
  try {
    await link(tmp, path);
    return identity;
  } catch (err) {
    if (errCode(err) !== 'EEXIST') throw err;
    return undefined;
  } finally {
    await unlink(tmp).catch(ignoreEnoent);
  }
}

/**
 * Touches the waiting mark, creating it if need be (O_EXCL: a symbolic link in its place is never
 * followed; lutimes touches only the link). Best effort: without it the waiter still polls.
 */
async function markWaiting(mark: string): Promise<void> {
  const now = new Date();
  try {
    await lutimes(mark, now, now);
  } catch (err) {
    if (errCode(err) !== 'ENOENT') return;
    await open(mark, 'wx', 0o600).then((fh) => fh.close(), () => {});
  }
}

/**
 * Whether a live (not stale) lock file exists at `path`. `onLoop`: first ask lstat(2) on the
 * server thread whether anything is there at all (the usual answer, no), instead of an open(2)
 * in the thread pool that fails with ENOENT.
 */
export async function isLockHeld(path: string, onLoop = false): Promise<boolean> {
  if (onLoop && lstatSync(path, { throwIfNoEntry: false }) === undefined) return false;
  const content = await readIfExists(path);
  if (content === undefined) return false;
  return !(await isStale(path, content));
}

/**
 * Removes the lock at `path` if it is stale; true if the caller should retry at once. The
 * content is read again just before unlink(2), so a lock re-created meanwhile survives.
 */
async function breakIfStale(path: string): Promise<boolean> {
  const content = await readIfExists(path);
  if (content === undefined) return true;
  if (!(await isStale(path, content))) return false;
  if ((await readIfExists(path)) !== content) return true;
  await unlink(path).catch(ignoreEnoent);
  return true;
}

async function isStale(path: string, content: string): Promise<boolean> {
  let mtimeMs: number;
  try {
    mtimeMs = (await lstat(path)).mtimeMs;
  } catch (err) {
    if (errCode(err) === 'ENOENT') return true;
    throw err;
  }
  if (Date.now() - mtimeMs > LOCK_STALE_MS) return true;
  // An empty or partial file is a lock being written right now: only age makes it stale.
  const m = /^(\d+) (\S+) \d+ (\S+)\n$/.exec(content);
  if (m === null || m[2] !== LOCK_HOST) return false;
  const pid = Number(m[1]);
  if (pid === process.pid) return !heldTokens.has(m[3]!);
  return !isProcessAlive(pid);
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errCode(err) === 'EPERM'; // exists, owned by another user
  }
}

/** Longest lock content read: `<pid> <host> <time> <token>` is far shorter. */
const MAX_LOCK_BYTES = 512;

/**
 * The content of a lock file, undefined if there is none. A symbolic link or anything but a
 * regular file reads as '' (a lock being written: only age makes it stale), and at most
 * MAX_LOCK_BYTES are read, so a link to /dev/zero or a FIFO cannot hold or flood the reader.
 */
async function readIfExists(path: string): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | NOFOLLOW);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return undefined;
    if (isLinkError(err)) return '';
    throw err;
  }
  try {
    if (!(await fh.stat()).isFile()) return '';
    const buf = Buffer.alloc(MAX_LOCK_BYTES);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.toString('utf8', 0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** An in-process FIFO mutex. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  private pending = 0;

  get idle(): boolean {
    return this.pending === 0;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    this.pending++;
    const previous = this.tail;
    let done!: () => void;
    this.tail = new Promise<void>((resolve) => (done = resolve));
    try {
      await previous;
      return await fn();
    } finally {
      this.pending--;
      done();
    }
  }
}

/**
 * Session markers and the expiry wait: which sessions have a maildrop open, across processes, so
 * that retention (R-S18) never removes a message a live session has in its snapshot (R-S3), even
 * when `poplar expire` runs as a separate process beside `poplar serve`. The rules for
 * `poplar-session.<hex>.lock` and `poplar-expire.lock` (who takes them, for how long, what a crash
 * leaves) are in the lock table of maildir-maildrop.ts; this file implements the marker side.
 *
 * `SessionMarker` is the one marker a maildrop object (MaildirMaildrop) keeps: the first snapshot
 * creates it and waits out a running expiry, later ones join it for nothing on disk, the last one
 * out leaves it lingering for MARKER_LINGER_MS (a maildrop polled over and over does not create
 * and remove a file per session). A lingering marker covers nothing: this process's own expiry
 * ignores it (`idlePath`, `liveSessions`' `ignore`), so a snapshot that takes it up again while
 * such an expiry runs waits for the expire lock, as a creator does.
 */
import { randomBytes } from 'node:crypto';
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StorageError } from '../../errors.js';
import { errCode, ignoreEnoent } from './maildir-errors.js';
import { FileLock, isLockHeld } from '../file-lock.js';

export const EXPIRE_LOCK_FILE = 'poplar-expire.lock';
const MARKER = /^poplar-session\.[0-9a-f]{16}\.lock$/;
const POLL_MS = 20;
/** How long the marker outlives the last snapshot of this process (see above). */
export const MARKER_LINGER_MS = 2000;

/**
 * The maildrop's session marker (see above). Its fields are written only by its methods; the
 * owning MaildirMaildrop pairs each successful `join` with one `leave`.
 */
export class SessionMarker {
  private marker: Promise<FileLock> | undefined;
  private refs = 0;
  private linger: NodeJS.Timeout | undefined;

  /** `expiring`: whether an expiry of this maildrop object holds the expire lock now. */
  constructor(
    private readonly root: string,
    private readonly expiring: () => boolean,
  ) {}

  /**
   * Covers a new snapshot with the marker, creating it (and waiting out an expiry) if no
   * snapshot uses it. On failure the claim is undone before the error is thrown.
   */
  async join(waitMs: number): Promise<void> {
    const revived = this.refs === 0 && this.marker !== undefined;
    this.refs++;
    if (this.linger !== undefined) {
      clearTimeout(this.linger);
      this.linger = undefined;
    }
    if (this.marker === undefined) {
      const created = claimSession(this.root, waitMs);
      this.marker = created;
      created.catch(() => {
        if (this.marker === created) this.marker = undefined;
      });
    }
    try {
      await this.marker;
      // A lingering marker covered nothing for this process's own expiries (see above).
      if (revived && this.expiring()) await waitForExpiry(this.root, waitMs);
    } catch (err) {
      this.leave();
      throw err;
    }
  }

  /** Ends one snapshot's cover; the last one out leaves the marker for MARKER_LINGER_MS. */
  leave(): void {
    if (--this.refs > 0) return;
    if (this.marker === undefined) return;
    // A failure to remove it (EIO, EROFS, a chmod) leaves a marker that goes stale with this process.
    this.linger = setTimeout(() => void this.drop().catch(() => undefined), MARKER_LINGER_MS);
    this.linger.unref();
  }

  /** Removes the marker now if no snapshot uses it (a lingering one, or at shutdown). */
  async drop(): Promise<void> {
    if (this.refs > 0) return;
    if (this.linger !== undefined) clearTimeout(this.linger);
    this.linger = undefined;
    const marker = this.marker;
    this.marker = undefined;
    await (await marker?.catch(() => undefined))?.release();
  }

  /** The marker file kept while no snapshot uses it, for `liveSessions`' `ignore`. */
  async idlePath(): Promise<string | undefined> {
    if (this.refs > 0 || this.marker === undefined) return undefined;
    return (await this.marker.catch(() => undefined))?.path;
  }
}

/** Creates a marker, then waits until no expiry runs (at most `waitMs`). */
async function claimSession(root: string, waitMs: number): Promise<FileLock> {
  const marker = await FileLock.acquire(join(root, `poplar-session.${randomBytes(8).toString('hex')}.lock`), 0);
  if (marker === undefined) throw new StorageError('IO', `could not create a session marker in ${root}`);
  try {
    await waitForExpiry(root, waitMs);
  } catch (err) {
    await marker.release();
    throw err;
  }
  return marker;
}

async function waitForExpiry(root: string, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  while (await isLockHeld(join(root, EXPIRE_LOCK_FILE))) {
    if (Date.now() > deadline) throw new StorageError('IO', `timed out waiting for an expiry of ${root}`);
    await sleep(POLL_MS);
  }
}

/**
 * How many live session markers the maildir has; stale ones (dead holders) are removed.
 * `ignore`: this process's idle (lingering) marker, which covers no snapshot.
 */
export async function liveSessions(root: string, ignore?: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return 0;
    throw err;
  }
  let live = 0;
  for (const name of names.filter((n) => MARKER.test(n))) {
    const path = join(root, name);
    if (path === ignore) continue;
    if (await isLockHeld(path)) live++;
    else await unlink(path).catch(ignoreEnoent); // a marker's name is never reused
  }
  return live;
}

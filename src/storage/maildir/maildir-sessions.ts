/**
 * Which sessions have a maildrop open, across processes, so that retention (R-S18) never removes
 * a message a live session has in its snapshot (R-S3), even when `poplar expire` runs as a
 * separate process beside `poplar serve`.
 *
 * - Every snapshot is covered by a marker `poplar-session.<random>.lock` in the maildir root for
 *   its lifetime: a FileLock (maildir-lock.ts), so a marker left by a killed process is stale
 *   (its pid is dead, or it was not refreshed for LOCK_STALE_MS) and is ignored and removed.
 *   One marker per maildrop per process, counted in MaildropState (`joinSession`): the first
 *   snapshot creates it, the last to be released removes it; the others pay nothing on disk.
 * - An expiry holds `poplar-expire.lock` from before it looks for markers until its unlinks are
 *   done. A snapshot creates its marker first, then waits while that lock is held, and only then
 *   lists the maildir. Either the expiry sees the marker (and removes nothing), or the snapshot
 *   waits for the expiry and lists what is left: no snapshot ever lists a message it removes.
 *   A snapshot that joins a marker waits for its creator's check to end: any expiry that began
 *   before the marker existed was then over, and any later one sees the marker.
 * - The last snapshot out leaves the marker in place for MARKER_LINGER_MS, so a maildrop polled
 *   over and over (a phone every minute, a login benchmark) does not create and remove a marker
 *   file per session. A lingering marker covers nothing: this process's own expiry ignores it
 *   (`liveSessions`' `ignore`), and so the snapshot that takes it up again while such an expiry
 *   runs (`MaildropState.expiring`) waits for the expire lock, as a creator does. An expiry of
 *   another process needs no check: the marker has been on disk since before it began. Another process's expiry sees it and reports the maildrop in use,
 *   as it would for a live session, for at most that long after the last session.
 */
import { randomBytes } from 'node:crypto';
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StorageError } from '../../errors.js';
import { errCode, ignoreEnoent } from './maildir-errors.js';
import { FileLock, isLockHeld } from './maildir-lock.js';
import type { MaildropState } from './maildir-state.js';

export const EXPIRE_LOCK_FILE = 'poplar-expire.lock';
const MARKER = /^poplar-session\.[0-9a-f]{16}\.lock$/;
const POLL_MS = 20;
/** How long the marker outlives the last snapshot of this process (see above). */
export const MARKER_LINGER_MS = 2000;

/**
 * Covers a new snapshot with this process's marker for the maildrop, creating it (and waiting
 * out an expiry) if this is the only snapshot. Each successful call is paired with `leaveSession`.
 */
export async function joinSession(state: MaildropState, waitMs: number): Promise<void> {
  const revived = state.markerRefs === 0 && state.marker !== undefined;
  state.markerRefs++;
  if (state.markerLinger !== undefined) {
    clearTimeout(state.markerLinger);
    state.markerLinger = undefined;
  }
  if (state.marker === undefined) {
    const created = claimSession(state.root, waitMs);
    state.marker = created;
    created.catch(() => {
      if (state.marker === created) state.marker = undefined;
    });
  }
  try {
    await state.marker;
    // A lingering marker covered nothing for this process's own expiries (see above).
    if (revived && state.expiring > 0) await waitForExpiry(state.root, waitMs);
  } catch (err) {
    await leaveSession(state);
    throw err;
  }
}

/** Ends one snapshot's cover; the last one out leaves the marker for MARKER_LINGER_MS. */
export async function leaveSession(state: MaildropState): Promise<void> {
  if (--state.markerRefs > 0) return;
  const marker = state.marker;
  if (marker === undefined) return;
  // A failure to remove it (EIO, EROFS, a chmod) leaves a marker that goes stale with this process.
  state.markerLinger = setTimeout(() => void dropMarker(state).catch(() => undefined), MARKER_LINGER_MS);
  state.markerLinger.unref();
}

/** Removes the marker now if no snapshot uses it (a lingering one, or at shutdown). */
export async function dropMarker(state: MaildropState): Promise<void> {
  if (state.markerRefs > 0) return;
  if (state.markerLinger !== undefined) clearTimeout(state.markerLinger);
  state.markerLinger = undefined;
  const marker = state.marker;
  state.marker = undefined;
  await (await marker?.catch(() => undefined))?.release();
}

/** The marker file this process keeps but no snapshot uses, for `liveSessions`' `ignore`. */
export async function idleMarker(state: MaildropState): Promise<string | undefined> {
  if (state.markerRefs > 0 || state.marker === undefined) return undefined;
  return (await state.marker.catch(() => undefined))?.path;
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

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

/**
 * Covers a new snapshot with this process's marker for the maildrop, creating it (and waiting
 * out an expiry) if this is the only snapshot. Each successful call is paired with `leaveSession`.
 */
export async function joinSession(state: MaildropState, waitMs: number): Promise<void> {
  state.markerRefs++;
  if (state.marker === undefined) {
    const created = claimSession(state.root, waitMs);
    state.marker = created;
    created.catch(() => {
      if (state.marker === created) state.marker = undefined;
    });
  }
  try {
    await state.marker;
  } catch (err) {
    state.markerRefs--;
    throw err;
  }
}

/** Ends one snapshot's cover; the last one out removes the marker. */
export async function leaveSession(state: MaildropState): Promise<void> {
  if (--state.markerRefs > 0) return;
  const marker = state.marker;
  state.marker = undefined;
  await (await marker?.catch(() => undefined))?.release();
}

/** Creates a marker, then waits until no expiry runs (at most `waitMs`). */
export async function claimSession(root: string, waitMs: number): Promise<FileLock> {
  const marker = await FileLock.acquire(join(root, `poplar-session.${randomBytes(8).toString('hex')}.lock`), 0);
  if (marker === undefined) throw new StorageError('IO', `could not create a session marker in ${root}`);
  const deadline = Date.now() + waitMs;
  try {
    while (await isLockHeld(join(root, EXPIRE_LOCK_FILE))) {
      if (Date.now() > deadline) throw new StorageError('IO', `timed out waiting for an expiry of ${root}`);
      await sleep(POLL_MS);
    }
  } catch (err) {
    await marker.release();
    throw err;
  }
  return marker;
}

/** How many live session markers the maildir has; stale ones (dead holders) are removed. */
export async function liveSessions(root: string): Promise<number> {
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
    if (await isLockHeld(path)) live++;
    else await unlink(path).catch(ignoreEnoent); // a marker's name is never reused
  }
  return live;
}

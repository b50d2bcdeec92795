/**
 * Per-process state of each maildrop, shared by every MaildirStore of this process (module
 * level, keyed by the resolved root path): the in-process mutex in front of the uidlist lock
 * file (and that lock file while it is kept between delivery batches), the count of open
 * snapshots and the exclusive flag (the lock rule in maildir-store.ts), and the uidlist cache. Idle states beyond MAX_CACHED are evicted, least recently used first;
 * the files are the truth, so an evicted cache only costs a full re-read of the uidlist.
 */
import { join, resolve } from 'node:path';
import { Mutex, type FileLock } from './maildir-lock.js';
import { UIDLIST_FILE, UidList } from './maildir-uidlist.js';

const MAX_CACHED = 256;

export interface MaildropState {
  readonly root: string;
  readonly mutex: Mutex;
  readonly uidlist: UidList;
  openSnapshots: number;
  exclusive: boolean;
  /** cur/, new/ and tmp/ were made or seen by this process; reset after any failure. */
  ready: boolean;
  /** The uidlist lock file, kept for a moment after a delivery batch (maildir-store.ts `locked`). */
  keptLock: KeptLock | undefined;
  /** No lock is kept before this time (ms since the epoch): other processes get their turn. */
  keepPausedUntil: number;
}

export interface KeptLock {
  readonly lock: FileLock;
  /** When the lock file was taken: it is held at most LOCK_HOLD_MAX_MS in one go. */
  readonly since: number;
  readonly timer: NodeJS.Timeout;
}

const states = new Map<string, MaildropState>();

export function maildropState(root: string): MaildropState {
  const key = resolve(root);
  let state = states.get(key);
  if (state === undefined) {
    state = {
      root: key,
      mutex: new Mutex(),
      uidlist: new UidList(join(key, UIDLIST_FILE)),
      openSnapshots: 0,
      exclusive: false,
      ready: false,
      keptLock: undefined,
      keepPausedUntil: 0,
    };
  } else {
    states.delete(key); // re-inserted below: Map order is the LRU order
  }
  states.set(key, state);
  if (states.size > MAX_CACHED) evictIdle(key);
  return state;
}

/** Evicts idle states, oldest first, never the one just handed out. */
function evictIdle(current: string): void {
  for (const [key, s] of states) {
    if (states.size <= MAX_CACHED) return;
    if (key !== current && s.openSnapshots === 0 && !s.exclusive && s.mutex.idle) states.delete(key);
  }
}

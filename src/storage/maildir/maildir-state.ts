/**
 * Per-process state of each maildrop, shared by every MaildirStore of this process (module
 * level, keyed by the resolved root path): the in-process mutex in front of the uidlist lock
 * file (and that lock file while it is kept between delivery batches), the count of open
 * snapshots and the exclusive flag (the lock rule in maildir-store.ts), the uidlist cache, the
 * listing cache (maildir-listing.ts), the session marker shared by this process's snapshots
 * (maildir-sessions.ts) and when tmp/ was last cleaned. Idle states beyond MAX_CACHED are
 * evicted, least recently used first; the files are the truth, so an evicted cache only costs a
 * full re-read of the uidlist and a full scan. Listings are large (a 50,000-message maildrop's is
 * some MB), so they have their own budget: past MAX_LISTED_MESSAGES, the listings of idle states
 * are dropped, least recently used first.
 */
import { join, resolve } from 'node:path';
import type { Listing } from './maildir-listing.js';
import { Mutex, type FileLock } from './maildir-lock.js';
import { UIDLIST_FILE, UidList } from './maildir-uidlist.js';

const MAX_CACHED = 256;
/** Messages, summed over the cached listings of all states, before idle ones are dropped. */
const MAX_LISTED_MESSAGES = 500_000;

export interface MaildropState {
  readonly root: string;
  readonly mutex: Mutex;
  readonly uidlist: UidList;
  openSnapshots: number;
  exclusive: boolean;
  /** cur/, new/ and tmp/ were made or seen by this process; reset after any failure. */
  ready: boolean;
  /** The root with the links above it resolved, once `ready` (maildir-links.ts realRootOf). */
  realRoot: string | undefined;
  /** The last full scan's listing, shared by sessions while still valid. */
  listing: Listing | undefined;
  /** This process's session marker, while `markerRefs` > 0 (maildir-sessions.ts). */
  marker: Promise<FileLock> | undefined;
  markerRefs: number;
  /** Pending removal of the marker after the last snapshot (maildir-sessions.ts MARKER_LINGER_MS). */
  markerLinger: NodeJS.Timeout | undefined;
  /** Expiries of this process holding the maildrop's expire lock now. */
  expiring: number;
  /** Date.now() of the last tmp/ cleaning, 0 for never. */
  tmpCleanedAt: number;
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
      realRoot: undefined,
      listing: undefined,
      marker: undefined,
      markerRefs: 0,
      markerLinger: undefined,
      expiring: 0,
      tmpCleanedAt: 0,
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
    // A lingering marker is removed by its own timer, which holds the state it belongs to.
    if (key !== current && s.openSnapshots === 0 && !s.exclusive && s.mutex.idle) states.delete(key);
  }
}

/** Keeps `listing` as the state's cache, dropping other idle states' listings past the budget. */
export function cacheListing(state: MaildropState, listing: Listing): void {
  state.listing = listing;
  let listed = 0;
  for (const s of states.values()) listed += s.listing?.messages.length ?? 0;
  for (const s of states.values()) {
    if (listed <= MAX_LISTED_MESSAGES) return;
    if (s === state || s.listing === undefined || s.openSnapshots > 0) continue;
    listed -= s.listing.messages.length;
    s.listing = undefined;
  }
}

/** Every maildrop state of this process (MaildirStore.close removes lingering markers). */
export function allStates(): IterableIterator<MaildropState> {
  return states.values();
}

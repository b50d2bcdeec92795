/**
 * Per-process state of each maildrop, shared by every MaildirStore of this process (module
 * level, keyed by the resolved root path): the in-process mutex in front of the uidlist lock
 * file, the count of open snapshots and the exclusive flag (the lock rule in maildir-store.ts),
 * and the uidlist cache. Idle states beyond MAX_CACHED are evicted, least recently used first;
 * the files are the truth, so an evicted cache only costs a full re-read of the uidlist.
 */
import { join, resolve } from 'node:path';
import { Mutex } from './maildir-lock.js';
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

/**
 * The uidlist lock of one maildrop object (`poplar-uidlist.lock`; the lock table in
 * maildir-maildrop.ts states who takes it): this process's writers queue on a Mutex, then take
 * the lock file (../file-lock.ts).
 *
 * - Kept: after a delivery batch (`keep`) the lock file is kept LOCK_KEEP_MS for the next batch,
 *   so a busy maildrop skips taking it again (create, link, unlink, stat, unlink).
 * - Fair to other processes: a writer waiting in another process announces itself
 *   (`<lock>.waiting`). A busy holder (holding, or taking the lock again within LOCK_BUSY_GAP_MS
 *   of letting it go) looks for that mark every LOCK_HOLD_MAX_MS; if it is fresh, the holder lets
 *   go and takes no lock until the waiter has it (the mark is gone) or stopped waiting (the mark
 *   went stale), at most LOCK_YIELD_MAX_MS. A fixed pause was missed by a waiter whose timer
 *   fired late on a loaded machine.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { FileLock, LOCK_RETRY_MAX_MS, Mutex } from '../file-lock.js';

/** How long the lock file is kept after a delivery batch, for the next one. */
const LOCK_KEEP_MS = 20;
/** How often a busy holder looks for another process waiting. */
const LOCK_HOLD_MAX_MS = 500;
/**
 * Taking the lock again this soon after letting it go continues a busy period: a waiter that
 * polls (every LOCK_RETRY_MAX_MS at most) may not have had a try in the gap.
 */
const LOCK_BUSY_GAP_MS = LOCK_RETRY_MAX_MS;
/** The longest a holder that saw a waiter takes no lock (two waiters may keep the mark fresh). */
const LOCK_YIELD_MAX_MS = 1000;
/** How often a yielding holder looks whether the waiter has taken the lock. */
const LOCK_YIELD_POLL_MS = 10;

interface KeptLock {
  readonly lock: FileLock;
  readonly timer: NodeJS.Timeout;
}

export class UidlistLock {
  private readonly mutex = new Mutex();
  /** The lock file, kept for a moment after a delivery batch. */
  private kept: KeptLock | undefined;
  /** Another process waits: the next writer lets it in first (`letWaiterIn`). */
  private yielding = false;
  /** Start of the current busy period (see the header), and when the lock was last let go. */
  private busySince = 0;
  private releasedAt = 0;

  /** `path`: the lock file (UIDLIST_LOCK_FILE in the maildrop's root). */
  constructor(private readonly path: string) {}

  /** No writer queued or running, and no lock file kept. */
  get idle(): boolean {
    return this.mutex.idle && this.kept === undefined;
  }

  /**
   * Runs `fn` holding the mutex, then the lock file; a writer waits up to `waitMs` for the file,
   * then fails StorageError('IO'). `keep`: a delivery batch (see the header).
   */
  run<T>(fn: () => Promise<T>, waitMs: number, keep = false): Promise<T> {
    return this.mutex.run(async () => {
      let lock = this.takeKept();
      if (lock === undefined) {
        await this.letWaiterIn();
        if (Date.now() - this.releasedAt > LOCK_BUSY_GAP_MS) this.busySince = Date.now();
        lock = await FileLock.acquireOrFail(this.path, waitMs, { announce: true });
      }
      let keepIt = false;
      try {
        const result = await fn();
        keepIt = keep;
        const now = Date.now();
        if (now - this.busySince >= LOCK_HOLD_MAX_MS) {
          this.busySince = now;
          if (await FileLock.othersWaiting(this.path)) {
            this.yielding = true;
            keepIt = false;
          }
        }
        return result;
      } finally {
        if (keepIt) this.keep(lock);
        else await this.release(lock);
      }
    });
  }

  /** Releases a kept lock file (store shutdown). */
  async close(): Promise<void> {
    if (this.kept === undefined) return;
    await this.mutex.run(async () => {
      const lock = this.takeKept();
      if (lock !== undefined) await this.release(lock);
    });
  }

  /** The kept lock file, now this writer's (its release timer stopped), if there is one. */
  private takeKept(): FileLock | undefined {
    const kept = this.kept;
    if (kept === undefined) return undefined;
    clearTimeout(kept.timer);
    this.kept = undefined;
    return kept.lock;
  }

  /** After letting go for a waiting process: no lock until it has the lock or stopped waiting. */
  private async letWaiterIn(): Promise<void> {
    if (!this.yielding) return;
    this.yielding = false;
    const until = Date.now() + LOCK_YIELD_MAX_MS;
    while (Date.now() < until && (await FileLock.othersWaiting(this.path))) await sleep(LOCK_YIELD_POLL_MS);
  }

  private keep(lock: FileLock): void {
    const timer = setTimeout(() => {
      if (this.kept?.lock !== lock) return; // taken over by a writer
      if (!this.mutex.idle) return void timer.refresh(); // a writer is about to take it over
      this.kept = undefined;
      void this.release(lock).catch(() => {}); // a lock left behind is broken as stale (file-lock.ts)
    }, LOCK_KEEP_MS);
    timer.unref();
    this.kept = { lock, timer };
  }

  private async release(lock: FileLock): Promise<void> {
    try {
      await lock.release();
    } finally {
      this.releasedAt = Date.now();
    }
  }
}

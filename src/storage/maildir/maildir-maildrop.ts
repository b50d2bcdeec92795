/**
 * One Maildir maildrop as this process sees it (R-X7): the single owner of its in-process state and
 * of the concurrency rules below. MaildirStore maps a mailbox name to the root; a MaildropRegistry
 * (maildir-registry.ts) holds one MaildirMaildrop per resolved root. Every field is private and
 * written only by this class's methods; a method that claims something (a snapshot slot, the
 * exclusive flag, a session marker, a lock, the expiry count) undoes it itself if it fails.
 * The methods are async and know nothing of POP3: the same shape serves other front ends.
 *
 * Lock and marker files in the maildrop root (all are FileLocks, ../file-lock.ts: written whole
 * through `<lock>.<token>.tmp` + link(2), refreshed every LOCK_STALE_MS / 3 by the holder, stale
 * once the holder's pid is dead on this host or the mtime is LOCK_STALE_MS (30 s) old; a waiter
 * breaks a stale one). This table is the one statement of the rules; other files point here.
 *
 * - `poplar-uidlist.lock` (UIDLIST_LOCK_FILE). Taken by `locked` (a UidlistLock,
 *   maildir-uidlist-lock.ts, behind this object's in-process Mutex): delivery batches (`deliver`
 *   → group commit, with a quota's check: maildir-quota.ts), first-sight uid records and
 *   compaction (maildir-assign.ts), `forget` (`D` records after a snapshot's commit or an
 *   expiry). Held for the append or rewrite; after a delivery batch kept LOCK_KEEP_MS (20 ms) for
 *   the next batch (any writer of this object reuses it). A busy holder lets a waiting process
 *   in every LOCK_HOLD_MAX_MS (500 ms): the waiter touches `<lock>.waiting` on each try, and the
 *   holder that sees it fresh takes no lock until the waiter has it or stopped waiting, at most
 *   LOCK_YIELD_MAX_MS (1 s). `close` releases a kept one. Writers wait up
 *   to `lockWaitMs` (default LOCK_WAIT_MS, 10 s), then fail 'IO'. Crash: a stale lock, broken as
 *   above; a torn uidlist append is truncated by the next writer (maildir-uidlist.ts).
 * - `poplar-pop3.lock` (SESSION_LOCK_FILE). Taken without waiting by an exclusive `open`
 *   (R-S3 opt-in exclusive mode), held until that snapshot's release. A plain open fails
 *   MAILBOX_LOCKED while it is held. Crash: stale, broken as above; until then opens fail.
 * - `poplar-session.<16 hex>.lock`: the session marker (maildir-sessions.ts SessionMarker), one
 *   per maildrop object. Created by the first snapshot before it lists, kept while any snapshot is
 *   open and MARKER_LINGER_MS (2 s) after the last; removed then or by `close`. Crash: stale;
 *   `liveSessions` (run by an expiry) removes stale markers.
 * - `poplar-expire.lock` (EXPIRE_LOCK_FILE). Taken by `expire` (waits up to `lockWaitMs`) before
 *   it counts session markers, held until its unlinks and `D` records are done. A snapshot that
 *   creates a marker (or takes up a lingering one while an expiry of this object runs) waits
 *   while it is held (polling every 20 ms, up to `lockWaitMs`, then 'IO'), and lists only then:
 *   either the expiry sees the marker and removes nothing, or the snapshot lists what is left.
 *   Crash: stale, broken as above.
 * Other files a crash can leave: `<lock>.<token>.tmp` and `poplar-uidlist.<pid>.<hex>.tmp` in the
 * root (nothing removes them; they are inert), `poplar-uidlist.lock.waiting` (empty; the waiter
 * that takes the lock removes it; an old one means nothing), and tmp/ debris of a delivery, removed after 36 h
 * (maildir-dir.ts cleanTmp, at most every TMP_CLEAN_EVERY_MS per maildrop object).
 *
 * Lock rule (R-S3), the same in every backend: an exclusive open fails with MAILBOX_LOCKED while
 * any other snapshot of the mailbox is open; any open fails while an exclusive snapshot is open;
 * release() ends the claim. `poplar-pop3.lock` carries the second rule across processes; plain
 * snapshots leave only a session marker on disk, so the first rule covers the plain snapshots
 * known to this maildrop object, i.e. to the stores sharing its registry.
 */
import { lstat, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { StorageError } from '../../errors.js';
import type { DeliverOptions, DeliveryResult, ExpireResult, ExpiryCandidate, MessageInfo, Usage } from '../mail-store.js';
import { scanAndAssign } from './maildir-assign.js';
import { GroupCommit } from './maildir-commit.js';
import { withdraw, writeToNew } from './maildir-deliver.js';
import { cleanTmp, ensureMaildir, fsyncDir, listFiles, locate, stampOf, stampOfSync } from './maildir-dir.js';
import { ignoreEnoent } from './maildir-errors.js';
import { HIDDEN_FLAG, parseName } from './maildir-filename.js';
import { assertRealDir, type MaildirLogger } from './maildir-links.js';
import { buildListing, stillValid, type Listing } from './maildir-listing.js';
import { FileLock, isLockHeld } from '../file-lock.js';
import { commitUnderQuota, quotaUsage, type Committed, type PendingDelivery } from './maildir-quota.js';
import { EXPIRE_LOCK_FILE, liveSessions, SessionMarker } from './maildir-sessions.js';
import { MaildirSnapshot, type ReadMode } from './maildir-snapshot.js';
import { UIDLIST_FILE, UidList } from './maildir-uidlist.js';
import { UidlistLock } from './maildir-uidlist-lock.js';

/** Held by an exclusive (RFC-strict, R-S3) session for its whole life. */
export const SESSION_LOCK_FILE = 'poplar-pop3.lock';
/** Held while the uidlist is appended to or rewritten. */
export const UIDLIST_LOCK_FILE = 'poplar-uidlist.lock';
/** tmp/ is read for stale debris at most this often per maildrop (the 36-hour rule is lax). */
const TMP_CLEAN_EVERY_MS = 15 * 60 * 1000;

/** A store's settings, passed with each call (stores sharing a registry may differ). */
export interface MaildropSettings {
  /** How long a writer waits for the uidlist lock (and an opener for an expiry) before 'IO'. */
  readonly lockWaitMs: number;
  /** maildir-listing.ts: a directory changed this recently is listed again next time. */
  readonly dirtyWindowMs: number;
  readonly reads: ReadMode;
  readonly logger: MaildirLogger | undefined;
  /** A new unique base name for a delivered file (maildir-filename.ts newUniqueName). */
  readonly uniqueName: () => string;
}

/** Points where a test (or a future caller) may observe or pause the maildrop's work. */
export interface MaildropHooks {
  /** Awaited at the start of each delivery batch, before the uidlist lock; `size` deliveries. */
  readonly commit?: (root: string, size: number) => void | Promise<void>;
  /** Awaited by an expiry that found the maildrop unused, while it holds `poplar-expire.lock`. */
  readonly expiring?: (root: string) => void | Promise<void>;
}

/** What a maildrop needs from its registry. */
export interface MaildropHost {
  readonly hooks: MaildropHooks;
  /** Called after `m` cached a new listing: drops other idle maildrops' listings past the budget. */
  listed(m: MaildirMaildrop): void;
}


export class MaildirMaildrop {
  private readonly uidlist: UidList;
  /** `poplar-uidlist.lock` and this process's queue of its writers (maildir-uidlist-lock.ts). */
  private readonly uidlistLock: UidlistLock;
  private readonly marker: SessionMarker;
  private openSnapshots = 0;
  private exclusive = false;
  /** cur/, new/ and tmp/ were made or seen; reset after any failure. */
  private ready = false;
  /** The root with the links above it resolved, once `ready` (maildir-links.ts realRootOf). */
  private realRootPath: string | undefined;
  /** The last full scan's listing, shared by snapshots while still valid (maildir-listing.ts). */
  private listing: Listing | undefined;
  /** Expiries of this object holding the expire lock now. */
  private expiring = 0;
  /** Date.now() of the last tmp/ cleaning, 0 for never. */
  private tmpCleanedAt = 0;
  /** The group commit (maildir-commit.ts), while deliveries are in flight. */
  private commits: GroupCommit<PendingDelivery, Committed> | undefined;

  /** `root`: resolved, absolute. */
  constructor(
    readonly root: string,
    private readonly host: MaildropHost,
  ) {
    this.uidlist = new UidList(join(root, UIDLIST_FILE));
    this.uidlistLock = new UidlistLock(join(root, UIDLIST_LOCK_FILE));
    this.marker = new SessionMarker(root, () => this.expiring > 0);
  }

  /** Nothing in flight: the registry may forget this object (its files are the truth). */
  get idle(): boolean {
    return this.openSnapshots === 0 && !this.exclusive && this.uidlistLock.idle && this.commits === undefined && this.expiring === 0;
  }

  /** Messages in the cached listing (the registry's budget), 0 without one. */
  get listedMessages(): number {
    return this.listing?.list.length ?? 0;
  }

  /** The cached listing, for inspection: shared and immutable, undefined when none is kept. */
  get cachedListing(): Listing | undefined {
    return this.listing;
  }

  /** Where message files are opened from (maildir-links.ts fdInMaildir). */
  get realRoot(): string {
    return this.realRootPath ?? this.root;
  }

  /** Drops the cached listing unless a snapshot is open (the registry's budget). */
  shedListing(): boolean {
    if (this.listing === undefined || this.openSnapshots > 0) return false;
    this.listing = undefined;
    return true;
  }

  /** The files are changing (a snapshot's commit): the next open lists them again. */
  invalidateListing(): void {
    this.listing = undefined;
  }

  /** A snapshot (R-S3), under the lock rule above. Failures undo every claim made here. */
  async open(mailbox: string, exclusive: boolean, s: MaildropSettings): Promise<MaildirSnapshot> {
    if (this.exclusive || (exclusive && this.openSnapshots > 0)) throw locked(mailbox);
    this.openSnapshots++; // claimed synchronously, before any await (the lock rule above)
    if (exclusive) this.exclusive = true;
    let sessionLock: FileLock | undefined;
    let joined = false;
    try {
      await this.prepare();
      await this.marker.join(s.lockWaitMs);
      joined = true;
      const lockPath = join(this.root, SESSION_LOCK_FILE);
      if (exclusive) {
        sessionLock = await FileLock.acquire(lockPath, 0);
        if (sessionLock === undefined) throw locked(mailbox);
      } else if (await isLockHeld(lockPath, s.reads === 'event-loop')) {
        throw locked(mailbox);
      }
      const listing = await this.currentListing(s);
      return new MaildirSnapshot(mailbox, listing, this, s, sessionLock);
    } catch (err) {
      this.ready = false;
      this.listing = undefined;
      this.openSnapshots--;
      if (exclusive) this.exclusive = false;
      await sessionLock?.release();
      if (joined) this.marker.leave();
      throw err;
    }
  }

  /** Ends a snapshot's claim (MaildirSnapshot.release, once per snapshot). */
  async release(exclusiveLock: FileLock | undefined): Promise<void> {
    this.openSnapshots--;
    if (exclusiveLock !== undefined) {
      this.exclusive = false;
      await exclusiveLock.release();
    }
    this.marker.leave();
  }

  /**
   * Delivers a message (R-X6): its file is written and renamed into new/ (maildir-deliver.ts),
   * then made durable with a uid (R-S12) in one group commit with the deliveries that arrive
   * meanwhile (an open() that saw the file first already gave it one). A delivery that fails is
   * withdrawn: nothing that was not acknowledged stays visible.
   */
  async deliver(message: Buffer | AsyncIterable<Buffer>, opts: DeliverOptions, s: MaildropSettings): Promise<DeliveryResult> {
    let delivered: string | undefined;
    try {
      await this.prepare();
      const { name, rel, size } = await writeToNew(this.root, message, opts, s.uniqueName, s.reads === 'event-loop');
      delivered = rel;
      const item = {
        key: name, size, dir: rel.slice(0, 3), rel,
        ...(opts.uidl === undefined ? {} : { uidl: opts.uidl }),
        ...(opts.uid === undefined ? {} : { uid: opts.uid }),
        ...(opts.quota === undefined ? {} : { quota: opts.quota }),
      };
      const commit = (this.commits ??= new GroupCommit((items) => this.commitDeliveries(items, s)));
      const done = await commit.submit(item).finally(() => {
        // Settled after its batch ended; nothing queued means no delivery holds this commit.
        if (commit.idle && this.commits === commit) this.commits = undefined;
      });
      if ('refused' in done) {
        delivered = undefined; // withdrawn under the lock
        throw new StorageError('OVER_QUOTA', 'the maildrop is over quota');
      }
      return { uid: done.entry.uid, size, ...(done.usage === undefined ? {} : { usage: done.usage }), ...(done.warning === undefined ? {} : { warning: done.warning }) };
    } catch (err) {
      if (err instanceof StorageError && err.code === 'OVER_QUOTA') throw err;
      this.ready = false; // the folders may have gone: make them again next time
      if (delivered !== undefined) await withdraw(this.root, delivered);
      throw err;
    }
  }

  /** Messages and octets (R-S4 sizes) in the maildrop now, hidden ones included (maildir-quota.ts quotaUsage). */
  async usage(): Promise<Usage> {
    const files = await listFiles(this.root);
    if (files.size === 0) return { messages: 0, bytes: 0 };
    await this.uidlist.refresh();
    return quotaUsage(this.root, this.uidlist, files, new Set());
  }

  /** Retention (R-S18): removes the selected messages unless a session has the maildrop open. */
  async expire(select: (m: ExpiryCandidate) => boolean, dryRun: boolean, s: MaildropSettings): Promise<ExpireResult> {
    const lock = await FileLock.acquireOrFail(join(this.root, EXPIRE_LOCK_FILE), s.lockWaitMs);
    this.expiring++; // before any await: a snapshot reviving the idle marker waits (maildir-sessions.ts)
    try {
      if (this.openSnapshots > 0 || (await liveSessions(this.root, await this.marker.idlePath())) > 0) return { inUse: true, removed: [] };
      await this.host.hooks.expiring?.(this.root);
      this.listing = undefined; // the files are about to change
      await this.cleanTmpNowAndThen();
      const paths = (await scanAndAssign(this.root, this.uidlist, (fn) => this.locked(fn, s), s.logger)).scan.found;
      const candidates: ExpiryCandidate[] = [];
      for (const [id, rel] of paths) {
        if (!this.uidlist.entries.has(id)) continue;
        const st = await lstat(join(this.root, rel)).catch(ignoreEnoent);
        if (st) candidates.push({ ...this.messageInfo(id, rel), received: st.mtimeMs, hidden: hasFlag(rel, HIDDEN_FLAG) });
      }
      const removed = candidates.filter(select).sort((a, b) => a.uid - b.uid);
      if (dryRun || removed.length === 0) return { inUse: false, removed };
      // Unlinks go by path: the root and cur/ must not have been swapped for links since the scan.
      await assertRealDir(this.root);
      await assertRealDir(join(this.root, 'cur'));
      for (const m of removed) {
        await unlink(join(this.root, paths.get(m.id)!)).catch(async (err: unknown) => {
          ignoreEnoent(err);
          const moved = await locate(this.root, m.id); // renamed meanwhile (a flag change)
          if (moved !== undefined) await unlink(join(this.root, moved)).catch(ignoreEnoent);
        });
      }
      await fsyncDir(join(this.root, 'cur'));
      await this.forget(removed.map((m) => m.id), s);
      this.listing = undefined;
      return { inUse: false, removed };
    } finally {
      this.expiring--;
      await lock.release();
    }
  }

  /** Records that poplar removed these messages, freeing their names (maildir-uidlist.ts `D`). */
  forget(ids: readonly string[], s: MaildropSettings): Promise<void> {
    if (ids.length === 0) return Promise.resolve();
    return this.locked(async () => {
      await this.uidlist.refresh();
      await this.uidlist.forget(ids);
    }, s);
  }

  /** Removes a lingering session marker and releases a kept uidlist lock (store shutdown). */
  async close(): Promise<void> {
    await this.marker.drop();
    await this.uidlistLock.close();
  }

  /**
   * Makes cur/, new/ and tmp/ once, not on every login and delivery (four mkdir calls each); a
   * failure anywhere resets it, so vanished folders are made again.
   */
  private async prepare(): Promise<void> {
    if (this.ready) return;
    this.realRootPath = await ensureMaildir(this.root);
    this.ready = true;
  }

  /** The cached listing while new/, cur/ and the uidlist are unchanged, else a full scan, cached in turn. */
  private async currentListing(s: MaildropSettings): Promise<Listing> {
    const cached = this.listing;
    if (cached?.trusted === true) {
      // With event-loop reads these three stats run on the server thread: a settled login makes
      // no thread-pool round trip (docs/benchmarks.md, issue 14).
      const onLoop = s.reads === 'event-loop';
      const [newStamp, curStamp] = onLoop
        ? [stampOfSync(join(this.root, 'new')), stampOfSync(join(this.root, 'cur'))]
        : await Promise.all([stampOf(join(this.root, 'new')), stampOf(join(this.root, 'cur'))]);
      await this.uidlist.refresh(onLoop);
      if (stillValid(cached, newStamp, curStamp, this.uidlist)) return cached;
    }
    await this.cleanTmpNowAndThen();
    const { scan, clean } = await scanAndAssign(this.root, this.uidlist, (fn) => this.locked(fn, s), s.logger);
    const listing = buildListing(scan, this.uidlist, s.dirtyWindowMs, clean);
    this.listing = listing;
    this.host.listed(this);
    return listing;
  }

  /**
   * The Maildir spec's 36-hour tmp/ rule, at most every TMP_CLEAN_EVERY_MS: debris only becomes
   * stale by ageing, so reading tmp/ on every login finds nothing new to remove.
   */
  private async cleanTmpNowAndThen(): Promise<void> {
    const now = Date.now();
    if (now - this.tmpCleanedAt < TMP_CLEAN_EVERY_MS) return;
    await cleanTmp(this.root, now);
    this.tmpCleanedAt = now;
  }

  /**
   * Makes a batch of files already fsynced and renamed into new/ (or cur/) durable: fsync(2) of
   * their directories, and their uid records appended and fdatasynced under the uidlist lock,
   * taken once for the batch. Both run at once: nothing is acknowledged before both are done,
   * and a uid record whose file never became durable is only a dead record (its uid stays used).
   */
  private async commitDeliveries(items: readonly PendingDelivery[], s: MaildropSettings): Promise<Committed[]> {
    await this.host.hooks.commit?.(this.root, items.length);
    const dirs = [...new Set(items.map((i) => i.dir))];
    const [entries] = await Promise.all([
      this.locked(async () => {
        if (items.every((i) => i.quota === undefined)) return (await this.uidlist.append(items)).map((entry) => ({ entry }));
        return commitUnderQuota(this.root, this.uidlist, items, s.uniqueName);
      }, s, true),
      ...dirs.map((d) => fsyncDir(join(this.root, d))),
    ]);
    return entries;
  }

  /** Runs `fn` holding the uidlist lock (the table above); `keep`: a delivery batch. */
  private locked<T>(fn: () => Promise<T>, s: MaildropSettings, keep = false): Promise<T> {
    return this.uidlistLock.run(fn, s.lockWaitMs, keep);
  }

  /** A message's MessageInfo from its uidlist record and current file name. */
  private messageInfo(id: string, rel: string): MessageInfo {
    const entry = this.uidlist.entries.get(id)!;
    const uidl = this.uidlist.uidls.get(entry.uid);
    const info = { uid: entry.uid, size: entry.size, seen: hasFlag(rel, 'S'), id };
    return uidl === undefined ? info : { ...info, uidl };
  }
}

function hasFlag(rel: string, flag: string): boolean {
  return parseName(basename(rel)).flags.includes(flag);
}

function locked(mailbox: string): StorageError {
  return new StorageError('MAILBOX_LOCKED', `mailbox ${mailbox} is in use`);
}

/**
 * The Maildir backend (R-X7), sharing the standard layout root/{cur,new,tmp} with Postfix
 * (`home_mailbox = Maildir/`), Dovecot and mutt. Storage id = the file's base name (before `:2,`).
 * Uids and exact sizes live in poplar's own `poplar-uidlist` (maildir-uidlist.ts); the files of
 * other programs are only ever moved new/ -> cur/ and given flags, as every Maildir reader does.
 *
 * Delivery (R-X6): each message is written to tmp/, fsynced and renamed into new/; deliveries to
 * one maildrop then share a group commit (maildir-commit.ts): one fsync of new/ and one durable
 * uidlist append per batch, under the uidlist lock, which is kept briefly for the next batch.
 * A delivery resolves only once its file, its directory entry and its uid record are durable.
 *
 * Lock rule (R-S3 opt-in exclusive mode), the same in every backend:
 * - an exclusive open fails with MAILBOX_LOCKED while any other snapshot of that mailbox is open;
 * - any open fails with MAILBOX_LOCKED while an exclusive snapshot of that mailbox is open;
 * - release() ends the snapshot's claim; a released snapshot can no longer read or commit.
 * An exclusive snapshot holds `poplar-pop3.lock` (maildir-lock.ts) for its lifetime, so the
 * second rule holds across processes. Plain snapshots leave only a session marker on disk
 * (maildir-sessions.ts, for retention), so the first rule covers the plain snapshots of this
 * process only.
 */
import { lstat, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { StorageError } from '../../errors.js';
import { CrlfSizer } from '../../protocol/crlf.js';
import {
  isValidMailboxName,
  isValidUidl,
  type DeliverOptions,
  type DeliveryResult,
  type ExpireResult,
  type ExpiryCandidate,
  type MailStore,
  type MaildropSnapshot,
  type MessageInfo,
  type OpenOptions,
  type Usage,
} from '../mail-store.js';
import { crlfSizeOf, crlfSizes } from './maildir-bulk.js';
import { GroupCommit } from './maildir-commit.js';
import { cleanTmp, ensureMaildir, fsyncDir, listBases, listFiles, locate, scanMaildir, stampOf, type MaildirScan } from './maildir-dir.js';
import { errCode, ignoreEnoent, toStorageError } from './maildir-errors.js';
import {
  compareDeliveryOrder,
  encodeHostname,
  HIDDEN_FLAG,
  newUniqueName,
  parseName,
  sizeFromName,
} from './maildir-filename.js';
import { assertRealDir, type MaildirLogger } from './maildir-links.js';
import { FileLock, isLockHeld, LOCK_WAIT_MS } from './maildir-lock.js';
import { buildListing, DIRTY_WINDOW_MS, stillValid, type Listing } from './maildir-listing.js';
import { dropMarker, EXPIRE_LOCK_FILE, idleMarker, joinSession, leaveSession, liveSessions } from './maildir-sessions.js';
import { MaildirSnapshot, type ReadMode } from './maildir-snapshot.js';
import { allStates, cacheListing, maildropState, type MaildropState } from './maildir-state.js';
import type { NewEntry, UidEntry } from './maildir-uidlist.js';

/** Held by an exclusive (RFC-strict, R-S3) session for its whole life. */
export const SESSION_LOCK_FILE = 'poplar-pop3.lock';
/** Held while the uidlist is appended to or rewritten. */
export const UIDLIST_LOCK_FILE = 'poplar-uidlist.lock';
/** How long the uidlist lock file is kept after a delivery batch, for the next one. */
const LOCK_KEEP_MS = 20;
/** The longest the lock file is kept in one go; then it is not kept for LOCK_PAUSE_MS. */
const LOCK_HOLD_MAX_MS = 500;
const LOCK_PAUSE_MS = 250;
/** Compact the uidlist once this many records name vanished files and they outnumber the live. */
const COMPACT_MIN_DEAD = 32;
/** tmp/ is read for stale debris at most this often per maildrop (the 36-hour rule is lax). */
const TMP_CLEAN_EVERY_MS = 15 * 60 * 1000;

export interface MaildirStoreOptions {
  /** The maildrop's root directory for a (validated) mailbox name, e.g. `<data>/mail/%u`. */
  readonly path: (mailbox: string) => string;
  /** Host part of new file names (default: os.hostname()). */
  readonly hostname?: string;
  /** Clock for new file names, in (possibly fractional) ms since the epoch. */
  readonly now?: () => number;
  /** How long a writer waits for the uidlist lock before failing with 'IO' (default 10 s). */
  readonly lockWaitMs?: number;
  /** maildir-listing.ts: a directory changed this recently is listed again next time (default 100 ms). */
  readonly dirtyWindowMs?: number;
  /** How message files are read (config `storage.maildir_reads`; maildir-snapshot.ts); default 'event-loop'. */
  readonly reads?: ReadMode;
  /** Where symbolic links left out of listings are reported, once each (maildir-links.ts). */
  readonly logger?: MaildirLogger;
}

/** A delivery waiting for its batch: its uidlist record and the folder its file is in. */
interface PendingDelivery extends NewEntry {
  readonly dir: string;
}

export class MaildirStore implements MailStore {
  private readonly host: string;
  /** Maildrops where this store may have left a kept uidlist lock (released by close()). */
  private readonly keptIn = new Set<MaildropState>();
  /** Group commit per maildrop root, while deliveries to it are in flight. */
  private readonly commits = new Map<string, GroupCommit<PendingDelivery, UidEntry>>();
  private readonly now: () => number;
  private readonly lockWaitMs: number;
  private readonly dirtyWindowMs: number;

  constructor(private readonly opts: MaildirStoreOptions) {
    this.host = encodeHostname(opts.hostname ?? hostname());
    this.now = opts.now ?? (() => performance.timeOrigin + performance.now());
    this.lockWaitMs = opts.lockWaitMs ?? LOCK_WAIT_MS;
    this.dirtyWindowMs = opts.dirtyWindowMs ?? DIRTY_WINDOW_MS;
  }

  async open(mailbox: string, opts: OpenOptions): Promise<MaildropSnapshot> {
    const state = maildropState(this.root(mailbox));
    if (state.exclusive || (opts.exclusive && state.openSnapshots > 0)) throw locked(mailbox);
    state.openSnapshots++; // claimed synchronously, before any await (the lock rule above)
    if (opts.exclusive) state.exclusive = true;
    let sessionLock: FileLock | undefined;
    let joined = false;
    try {
      await prepare(state);
      await joinSession(state, this.lockWaitMs);
      joined = true;
      const lockPath = join(state.root, SESSION_LOCK_FILE);
      if (opts.exclusive) {
        sessionLock = await FileLock.acquire(lockPath, 0);
        if (sessionLock === undefined) throw locked(mailbox);
      } else if (await isLockHeld(lockPath)) {
        throw locked(mailbox);
      }
      const listing = await this.listing(state);
      const forget = (ids: readonly string[]): Promise<void> => this.forget(state, ids);
      return new MaildirSnapshot(mailbox, listing.messages, state, listing.paths, sessionLock, forget, this.opts.reads ?? 'event-loop');
    } catch (err) {
      state.ready = false;
      state.listing = undefined;
      state.openSnapshots--;
      if (opts.exclusive) state.exclusive = false;
      await sessionLock?.release();
      if (joined) await leaveSession(state);
      throw toStorageError(err, `opening ${mailbox}`);
    }
  }

  /**
   * The maildrop's listing (maildir-listing.ts): the cached one while new/, cur/ and the uidlist
   * are unchanged, else a full scan, which is cached in turn.
   */
  private async listing(state: MaildropState): Promise<Listing> {
    const cached = state.listing;
    if (cached?.trusted === true) {
      const [newStamp, curStamp] = await Promise.all([stampOf(join(state.root, 'new')), stampOf(join(state.root, 'cur'))]);
      await state.uidlist.refresh();
      if (stillValid(cached, newStamp, curStamp, state.uidlist)) return cached;
    }
    await this.cleanTmpNowAndThen(state);
    const { scan, clean } = await this.scanAndAssign(state);
    const listing = buildListing(scan, state.uidlist, this.dirtyWindowMs, clean);
    cacheListing(state, listing);
    return listing;
  }

  /**
   * The Maildir spec's 36-hour tmp/ rule, at most every TMP_CLEAN_EVERY_MS per maildrop: debris
   * only becomes stale by ageing, so reading tmp/ on every login finds nothing new to remove.
   */
  private async cleanTmpNowAndThen(state: MaildropState): Promise<void> {
    const now = Date.now();
    if (now - state.tmpCleanedAt < TMP_CLEAN_EVERY_MS) return;
    await cleanTmp(state.root, now);
    state.tmpCleanedAt = now;
  }

  async deliver(mailbox: string, message: Buffer | AsyncIterable<Buffer>, opts: DeliverOptions = {}): Promise<DeliveryResult> {
    const root = this.root(mailbox);
    if (opts.uidl !== undefined && !isValidUidl(opts.uidl)) {
      throw new StorageError('INVALID_UIDL', `invalid UIDL ${JSON.stringify(opts.uidl)}`);
    }
    let delivered: string | undefined;
    const state = maildropState(root);
    try {
      await prepare(state);
      const { name, rel, size } = await this.writeToNew(root, message, opts);
      delivered = rel;
      // R-S12: the uid is assigned now (an open() that saw the file first already gave it one),
      // in one durable batch with the deliveries that arrive meanwhile (maildir-commit.ts).
      const item = { key: name, size, dir: rel.slice(0, 3), ...(opts.uidl === undefined ? {} : { uidl: opts.uidl }) };
      const commit = this.committer(state);
      const entry = await commit.submit(item).finally(() => {
        // Settled after its batch ended; nothing queued means no delivery holds this commit.
        if (commit.idle && this.commits.get(state.root) === commit) this.commits.delete(state.root);
      });
      return { uid: entry.uid, size };
    } catch (err) {
      state.ready = false; // the folders may have gone: make them again next time
      // R-X6: a delivery that was not acknowledged leaves nothing behind if it can help it.
      // A login may have moved it to cur/ meanwhile (first sight): found by its base name then.
      if (delivered !== undefined) {
        const rel = delivered;
        await unlink(join(root, rel)).catch(async () => {
          const moved = await locate(root, parseName(basename(rel)).base).catch(() => undefined);
          if (moved !== undefined) await unlink(join(root, moved)).catch(() => {});
        });
      }
      throw toStorageError(err, `delivering to ${mailbox}`);
    }
  }

  async usage(mailbox: string): Promise<Usage> {
    const root = this.root(mailbox);
    try {
      const files = await listFiles(root);
      if (files.size === 0) return { messages: 0, bytes: 0 };
      const { uidlist } = maildropState(root);
      await uidlist.refresh();
      let messages = 0;
      let bytes = 0;
      for (const [base, rel] of files) {
        const size = uidlist.entries.get(base)?.size ?? sizeFromName(base) ?? (await crlfSizeOf(join(root, rel)));
        if (size === undefined) continue; // removed meanwhile
        messages++;
        bytes += size;
      }
      return { messages, bytes };
    } catch (err) {
      throw toStorageError(err, `measuring ${mailbox}`);
    }
  }

  async expire(
    mailbox: string,
    select: (m: ExpiryCandidate) => boolean,
    opts: { dryRun?: boolean } = {},
  ): Promise<ExpireResult> {
    if (!(await this.exists(mailbox))) return { inUse: false, removed: [] };
    const state = maildropState(this.root(mailbox));
    let lock: FileLock | undefined;
    try {
      lock = await FileLock.acquireOrFail(join(state.root, EXPIRE_LOCK_FILE), this.lockWaitMs);
      state.expiring++; // before any await: a snapshot reviving the idle marker waits (maildir-sessions.ts)
      if (state.openSnapshots > 0 || (await liveSessions(state.root, await idleMarker(state))) > 0) return { inUse: true, removed: [] };
      state.listing = undefined; // the files are about to change
      await this.cleanTmpNowAndThen(state);
      const paths = (await this.scanAndAssign(state)).scan.found;
      const candidates: ExpiryCandidate[] = [];
      for (const [id, rel] of paths) {
        if (!state.uidlist.entries.has(id)) continue;
        const st = await lstat(join(state.root, rel)).catch(ignoreEnoent);
        if (st) candidates.push({ ...messageInfo(state, id, rel), received: st.mtimeMs, hidden: isHidden(rel) });
      }
      const removed = candidates.filter(select).sort((a, b) => a.uid - b.uid);
      if (opts.dryRun === true || removed.length === 0) return { inUse: false, removed };
      // Unlinks go by path: the root and cur/ must not have been swapped for links since the scan.
      await assertRealDir(state.root);
      await assertRealDir(join(state.root, 'cur'));
      for (const m of removed) {
        const rel = paths.get(m.id)!;
        await unlink(join(state.root, rel)).catch(async (err: unknown) => {
          ignoreEnoent(err);
          const moved = await locate(state.root, m.id); // renamed meanwhile (a flag change)
          if (moved !== undefined) await unlink(join(state.root, moved)).catch(ignoreEnoent);
        });
      }
      await fsyncDir(join(state.root, 'cur'));
      await this.forget(state, removed.map((m) => m.id));
      state.listing = undefined;
      return { inUse: false, removed };
    } catch (err) {
      throw toStorageError(err, `expiring messages of ${mailbox}`);
    } finally {
      if (lock !== undefined) state.expiring--;
      await lock?.release();
    }
  }

  async exists(mailbox: string): Promise<boolean> {
    const root = this.root(mailbox);
    try {
      return (await lstat(join(root, 'cur'))).isDirectory(); // a link to a directory is no maildir
    } catch (err) {
      if (errCode(err) === 'ENOENT' || errCode(err) === 'ENOTDIR') return false;
      throw toStorageError(err, `checking ${mailbox}`);
    }
  }

  async create(mailbox: string): Promise<void> {
    const root = this.root(mailbox);
    await ensureMaildir(root).catch((err: unknown) => {
      throw toStorageError(err, `creating ${mailbox}`);
    });
  }

  /**
   * Releases the uidlist locks kept after deliveries and removes the session markers left
   * lingering (maildir-sessions.ts); snapshots release their own locks.
   */
  async close(): Promise<void> {
    await Promise.all([...allStates()].map((state) => dropMarker(state)));
    const states = [...this.keptIn];
    this.keptIn.clear();
    await Promise.all(
      states.map((state) =>
        state.mutex.run(async () => {
          const kept = state.keptLock;
          if (kept === undefined) return;
          clearTimeout(kept.timer);
          state.keptLock = undefined;
          await kept.lock.release();
        }),
      ),
    );
  }

  private root(mailbox: string): string {
    if (!isValidMailboxName(mailbox)) {
      throw new StorageError('INVALID_NAME', `invalid mailbox name ${JSON.stringify(mailbox)}`);
    }
    return this.opts.path(mailbox);
  }

  /**
   * Moves new/ to cur/, gives files seen for the first time their uid and exact size (R-S4,
   * R-S12), and returns the scan (base name -> relative path of every message found). Sizes are
   * computed before taking the lock, so the lock is held only for the uidlist append. `clean` is
   * false when a file moved during the scan (the listing is then used once, not cached).
   */
  private async scanAndAssign(state: MaildropState): Promise<{ scan: MaildirScan; clean: boolean }> {
    const scan = await scanMaildir(state.root, this.opts.logger);
    const { found } = scan;
    await state.uidlist.refresh();
    const unknown: { key: string; size: number }[] = [];
    const toSize: string[] = [];
    let live = 0;
    for (const key of found.keys()) {
      if (state.uidlist.entries.has(key)) {
        live++;
        continue;
      }
      const size = sizeFromName(key) ?? scan.sized.get(key);
      if (size === undefined) toSize.push(key);
      else unknown.push({ key, size });
    }
    let clean = true;
    if (toSize.length > 0) {
      const sizes = await crlfSizes(state.root, toSize.map((key) => found.get(key)!));
      let moved: Map<string, string> | undefined;
      for (let i = 0; i < toSize.length; i++) {
        const key = toSize[i]!;
        let size = sizes[i];
        if (size === undefined) {
          // Renamed (a flag change) or removed meanwhile: follow one rename, else drop it.
          clean = false;
          moved ??= await listFiles(state.root);
          const rel = moved.get(key);
          size = rel === undefined ? undefined : await crlfSizeOf(join(state.root, rel));
          if (size === undefined) found.delete(key);
          else found.set(key, rel!);
        }
        if (size !== undefined) unknown.push({ key, size });
      }
    }
    if (unknown.length === 0 && !compactionPays(state, live)) return { scan, clean };
    await this.locked(state, async () => {
      await state.uidlist.refresh();
      unknown.sort((a, b) => compareDeliveryOrder(a.key, b.key));
      await state.uidlist.append(unknown.filter((u) => !state.uidlist.entries.has(u.key)));
      if (compactionPays(state, liveIn(state, found))) {
        // A file renamed during the first listing may have been missed: list again before dropping.
        const present = await listBases(state.root);
        await state.uidlist.compact((key) => found.has(key) || present.has(key));
      }
    });
    return { scan, clean };
  }

  /**
   * Writes the message to tmp/ under a unique name, fsyncs it and renames it into new/ as
   * `<unique>,S=<raw octets>,W=<CRLF octets>` (Maildir spec delivery; Dovecot's size fields).
   */
  private async writeToNew(root: string, message: Buffer | AsyncIterable<Buffer>, opts: DeliverOptions) {
    // The file is created and renamed by path: neither folder may be a link to another directory.
    const into = opts.seen === true ? 'cur' : 'new';
    await Promise.all([assertRealDir(root), assertRealDir(join(root, 'tmp')), assertRealDir(join(root, into))]);
    const { unique, fh } = await this.createTmp(root);
    const tmpPath = join(root, 'tmp', unique);
    let closed = false;
    try {
      let raw = 0;
      const sizer = new CrlfSizer();
      for await (const chunk of Buffer.isBuffer(message) ? [message] : message) {
        raw += chunk.length;
        sizer.push(chunk);
        await writeAll(fh, chunk);
      }
      // The arrival time is the file's mtime, as Dovecot keeps it; import carries the original.
      if (opts.received !== undefined) await fh.utimes(opts.received / 1000, opts.received / 1000);
      await fh.sync();
      closed = true;
      await fh.close();
      const size = sizer.total();
      const name = `${unique},S=${raw},W=${size}`;
      // A message imported as already retrieved goes straight to cur/ with the S flag.
      const rel = opts.seen === true ? `cur/${name}:2,S` : `new/${name}`;
      await rename(tmpPath, join(root, rel));
      return { name, rel, size };
    } catch (err) {
      if (!closed) await fh.close().catch(() => {});
      await unlink(tmpPath).catch(ignoreEnoent);
      throw err;
    }
  }

  /** Creates tmp/<unique> with O_EXCL, so even a name collision can never overwrite a file. */
  private async createTmp(root: string): Promise<{ unique: string; fh: FileHandle }> {
    for (let attempt = 0; ; attempt++) {
      const unique = newUniqueName(this.now(), this.host);
      try {
        return { unique, fh: await open(join(root, 'tmp', unique), 'wx', 0o600) };
      } catch (err) {
        if (errCode(err) !== 'EEXIST' || attempt >= 10) throw err;
      }
    }
  }

  /** The maildrop's group commit (maildir-commit.ts); dropped from the map once it is idle. */
  private committer(state: MaildropState): GroupCommit<PendingDelivery, UidEntry> {
    let commit = this.commits.get(state.root);
    if (commit === undefined) {
      commit = new GroupCommit<PendingDelivery, UidEntry>((items) => this.commitDeliveries(state, items));
      this.commits.set(state.root, commit);
    }
    return commit;
  }

  /**
   * Makes a batch of files already fsynced and renamed into new/ (or cur/) durable: fsync(2) of
   * their directories, and their uid records appended and fdatasynced under the uidlist lock,
   * taken once for the batch. Both run at once: nothing is acknowledged before both are done,
   * and a uid record whose file never became durable is only a dead record (its uid stays used).
   */
  private async commitDeliveries(state: MaildropState, items: readonly PendingDelivery[]): Promise<UidEntry[]> {
    const dirs = [...new Set(items.map((i) => i.dir))];
    const [entries] = await Promise.all([
      this.locked(state, () => state.uidlist.append(items), true),
      ...dirs.map((d) => fsyncDir(join(state.root, d))),
    ]);
    return entries;
  }

  /** Records that poplar removed these messages, freeing their names (maildir-uidlist.ts `D`). */
  private forget(state: MaildropState, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return Promise.resolve();
    return this.locked(state, async () => {
      await state.uidlist.refresh();
      await state.uidlist.forget(ids);
    });
  }

  /**
   * Runs `fn` holding this process's mutex, then the uidlist lock file, for the maildrop.
   * With `keep` (delivery batches), the lock file is kept for LOCK_KEEP_MS afterwards, so the
   * next batch to a busy maildrop skips taking it again (create, link, unlink, stat, unlink);
   * any writer of this process reuses a kept lock. Other processes wait for it as for any
   * holder: it is kept at most LOCK_HOLD_MAX_MS in one go, then not kept for LOCK_PAUSE_MS.
   */
  private locked<T>(state: MaildropState, fn: () => Promise<T>, keep = false): Promise<T> {
    return state.mutex.run(async () => {
      const kept = state.keptLock;
      if (kept !== undefined) {
        clearTimeout(kept.timer);
        state.keptLock = undefined;
        this.keptIn.delete(state);
      }
      const lock = kept?.lock ?? (await FileLock.acquireOrFail(join(state.root, UIDLIST_LOCK_FILE), this.lockWaitMs));
      const since = kept?.since ?? Date.now();
      let keepIt = false;
      try {
        const result = await fn();
        const now = Date.now();
        if (keep && now - since >= LOCK_HOLD_MAX_MS) state.keepPausedUntil = now + LOCK_PAUSE_MS;
        keepIt = keep && now >= state.keepPausedUntil;
        return result;
      } finally {
        if (keepIt) this.keepLock(state, lock, since);
        else await lock.release();
      }
    });
  }

  private keepLock(state: MaildropState, lock: FileLock, since: number): void {
    this.keptIn.add(state);
    const timer = setTimeout(() => {
      if (state.keptLock?.lock !== lock) return; // taken over by a writer
      if (!state.mutex.idle) return void timer.refresh(); // a writer is about to take it over
      state.keptLock = undefined;
      this.keptIn.delete(state);
      void lock.release().catch(() => {}); // a lock left behind is broken as stale (maildir-lock.ts)
    }, LOCK_KEEP_MS);
    timer.unref();
    state.keptLock = { lock, since, timer };
  }
}

/** How many of `found` have a uidlist record. */
function liveIn(state: MaildropState, found: ReadonlyMap<string, string>): number {
  let live = 0;
  for (const key of found.keys()) if (state.uidlist.entries.has(key)) live++;
  return live;
}

/** The uidlist's lines for gone messages are many and outnumber the live ones. */
function compactionPays(state: MaildropState, live: number): boolean {
  const dead = state.uidlist.garbage + state.uidlist.entries.size - live;
  return dead >= COMPACT_MIN_DEAD && dead > live;
}

/**
 * Makes cur/, new/ and tmp/ once per process and maildrop, not on every login and delivery
 * (four mkdir calls each); a failure anywhere resets it, so vanished folders are made again.
 */
async function prepare(state: MaildropState): Promise<void> {
  if (state.ready) return;
  state.realRoot = await ensureMaildir(state.root);
  state.ready = true;
}

/** A message's MessageInfo from its uidlist record and current file name. */
function messageInfo(state: MaildropState, id: string, rel: string): MessageInfo {
  const entry = state.uidlist.entries.get(id)!;
  const uidl = state.uidlist.uidls.get(entry.uid);
  const info = { uid: entry.uid, size: entry.size, seen: parseName(basename(rel)).flags.includes('S'), id };
  return uidl === undefined ? info : { ...info, uidl };
}

function isHidden(rel: string): boolean {
  return parseName(basename(rel)).flags.includes(HIDDEN_FLAG);
}

function locked(mailbox: string): StorageError {
  return new StorageError('MAILBOX_LOCKED', `mailbox ${mailbox} is in use`);
}

async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let written = 0;
  while (written < chunk.length) {
    written += (await fh.write(chunk, written, chunk.length - written)).bytesWritten;
  }
}

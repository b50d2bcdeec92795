/**
 * `poplar-uidlist`: the file in the maildir root where poplar keeps each message's uid (R-S12)
 * and exact CRLF size (R-S4), keyed by the Maildir base name (the part before `:2,`, which
 * mutt, Dovecot and poplar never change once delivered). Other programs' files are never renamed
 * to hold this data. Format, one record per LF-terminated line:
 *
 *   poplar-uidlist 1 next=<next uid> gen=<random>     header, written only by a rewrite
 *   <uid> <size> <base name>                          one per message, appended
 *   U <uid> <uidl>                                    R-X11: a carried-over UIDL for that uid
 *   D <uid>                                           the message with that uid was removed
 *
 * A `D` record (written when poplar removes a message) frees the base name: a later file that
 * reuses the name (a restored backup, a writer with a poor unique-name scheme) is a new message
 * with a new uid and a freshly measured size, never the old message's uid and size.
 * The file is append-only between rewrites. The next uid is max(header `next`, largest uid + 1),
 * so a uid stays used after its line is dropped by a compaction. A line without its final LF is
 * a torn append (a crash mid-write): readers ignore it and the next writer truncates it away, so
 * every reader agrees on the same records. Appends and rewrites happen under the uidlist lock
 * (`poplar-uidlist.lock`, the lock table in maildir-maildrop.ts); reads need no lock. A rewrite goes to a temporary file, is fsynced, renamed
 * over the old one and the directory fsynced, so a reader sees the old or the new file, whole.
 * The file is never reached through a symbolic link (lstat, O_NOFOLLOW; maildir-links.ts): a
 * `poplar-uidlist` link fails every read and write of the maildrop, and its target is untouched.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fsyncDir } from './maildir-dir.js';
import { errCode, ignoreEnoent } from './maildir-errors.js';
import { openNoFollow } from './maildir-links.js';
import { lstatUidlist, lstatUidlistSync, openForAppend, readRange } from './maildir-uidlist-io.js';
import { Mutex } from '../file-lock.js';
import { UidRecords } from './maildir-records.js';

export const UIDLIST_FILE = 'poplar-uidlist';
/** An append handle unused for this long is closed (one descriptor per busy maildrop). */
const HELD_IDLE_MS = 2000;

export interface UidEntry {
  readonly uid: number;
  readonly size: number;
}

export interface NewEntry {
  readonly key: string;
  readonly size: number;
  /** R-X11: written as a `U` record right after the entry, in the same durable append. */
  readonly uidl?: string;
  /** DeliverOptions.uid: this uid if it is not below the next one (then the next count from it). */
  readonly uid?: number;
}

/**
 * The lines (parse() reads them from the octets): `poplar-uidlist 1 next=<1-15 digits> gen=<non-space>`;
 * `<1-15 digits> <1-15 digits> <name>` (name: anything but LF, as isMessageName allows; a
 * reader that skipped names with CR gave such a file a new uid at every look); `U <1-15 digits> <UIDL>`
 * (older readers skip these lines, the first field is not a number, so the format stays 1);
 * `D <1-15 digits>`.
 */
const HEADER = /^poplar-uidlist 1 next=(\d{1,15}) gen=(\S+)$/;
const UIDL_TEXT = /^[\x21-\x7e]{1,70}$/;

/** Most uidlist append handles kept open at once in this process (see writable()). */
const MAX_HELD = 64;
/** The UidLists holding one, oldest first. */
const holding = new Set<UidList>();

/** A cache of the file's records, brought up to date by reading only what was appended. */
export class UidList {
  /** Record per base name; the first line for a name wins (compact: maildir-records.ts). */
  readonly entries = new UidRecords();
  /** R-X11: carried-over UIDLs by uid; the first record for a uid wins. */
  readonly uidls = new Map<number, string>();
  /** Entry and `D` lines in the file: with the live count, tells when a compaction pays. */
  private lines = 0;
  private nextFromHeader = 1;
  private maxUid = 0;
  /** Identity of the cached file: inode, header line, and the offset after the last full line. */
  private ino = -1;
  private header = '';
  private offset = 0;
  private readonly serial = new Mutex();
  /** Inode, size and ctime of the file when refresh() last read it whole up to date. */
  private seen: string | undefined;
  /** The append handle (writable()); `pinned` once the cache was read through it. */
  private held: { fh: FileHandle; ino: number; timer: NodeJS.Timeout; pinned: boolean } | undefined;

  constructor(readonly path: string) {}

  /**
   * Identity of the cached records: the file is append-only between rewrites, so its inode, its
   * header (a new `gen` per rewrite) and the offset read so far change whenever the records do.
   * Listings built from the records stay valid while this is unchanged (maildir-listing.ts).
   */
  get stamp(): string {
    return `${this.ino}:${this.offset}:${this.header}`;
  }

  /** R-S12: the uid the next new message gets. */
  get nextUid(): number {
    return Math.max(this.nextFromHeader, this.maxUid + 1);
  }

  /**
   * Reads what changed in the file since the last call (all of it after a rewrite). One stat
   * when nothing did: every append, truncation or rewrite changes the file's size, ctime or inode,
   * and `seen` is taken before the read, so it can only be older than what the cache holds.
   * `onLoop`: that stat runs on the server thread (`storage.maildir_reads = "event-loop"`).
   */
  refresh(onLoop = false): Promise<void> {
    return this.serial.run(async () => {
      const st = onLoop ? lstatUidlistSync(this.path) : await lstatUidlist(this.path);
      if (st === undefined) {
        this.reset(-1);
        return;
      }
      const seen = `${st.ino}:${st.size}:${st.ctimeMs}`;
      if (seen === this.seen) return;
      let fh: FileHandle;
      try {
        fh = await openNoFollow(this.path, constants.O_RDONLY);
      } catch (err) {
        if (errCode(err) !== 'ENOENT') throw err;
        this.reset(-1);
        return;
      }
      try {
        await this.readFrom(fh);
        this.seen = seen;
      } finally {
        await fh.close();
      }
    });
  }

  /**
   * Appends records for `items`, in order, with consecutive new uids, and makes them durable
   * (fdatasync) before resolving. A name that already has a record keeps it. The caller holds
   * the maildrop lock. Resolves the record of each item, or nothing with `entries: false` (a
   * first sight of 50,000 files holds no object per file for an answer it does not read).
   */
  append(items: readonly NewEntry[], opts: { entries: boolean } = { entries: true }): Promise<UidEntry[]> {
    if (items.length === 0) return Promise.resolve([]);
    return this.serial.run(async () => {
      const { fh, st } = await this.writable();
      try {
        if ((await this.readFrom(fh, st)) > this.offset) await fh.truncate(this.offset); // torn line
        // The records go straight into one buffer (no string per record joined into one more).
        const fresh = new Map<string, number>(); // name -> uid, for a name twice in `items`
        const added: UidEntry[] = [];
        let out = Buffer.allocUnsafe(Math.max(256, items.length * 96));
        let o = 0;
        let next = this.nextUid;
        for (const { key, size, uidl, uid: wanted } of items) {
          const known = this.entries.get(key);
          const uid = known?.uid ?? fresh.get(key);
          if (uid !== undefined) {
            if (opts.entries) added.push(known ?? { uid, size: this.sizeOfFresh(items, key) });
            continue;
          }
          // A wanted uid (import keeping a decimal UIDL, R-X11) is taken while it is above every uid given.
          const entry = { uid: Math.max(next, wanted ?? 0), size };
          next = entry.uid + 1;
          fresh.set(key, entry.uid);
          if (opts.entries) added.push(entry);
          const line = record(key, entry, uidl);
          if (o + 3 * line.length > out.length) {
            const grown = Buffer.allocUnsafe(2 * out.length + 3 * line.length);
            out.copy(grown, 0, 0, o);
            out = grown;
          }
          o += out.write(line, o, 'utf8');
        }
        const bytes = out.subarray(0, o);
        let written = 0;
        while (written < bytes.length) {
          const r = await fh.write(bytes, written, bytes.length - written, this.offset + written);
          written += r.bytesWritten;
        }
        await fh.datasync();
        // The cache learns the records only once they are durable, read back from the octets
        // written as from the file (each name its own string, not a slice of a caller's).
        for (let at = 0; at < bytes.length; ) {
          const lf = bytes.indexOf(0x0a, at);
          this.parse(bytes, at, lf);
          at = lf + 1;
        }
        this.offset += bytes.length;
        return added;
      } catch (err) {
        await this.dropHeld(); // the next append starts from a fresh open
        throw err;
      }
    });
  }

  /** The size recorded for `key` by its first item (a name given twice keeps its first record). */
  private sizeOfFresh(items: readonly NewEntry[], key: string): number {
    return items.find((i) => i.key === key)!.size;
  }

  /**
   * The file opened for appending, kept open between appends (closed once idle for
   * HELD_IDLE_MS): one stat(2) of the path instead of open, fstat, a header read and close per
   * append. While the handle is open its inode cannot be freed, so a path naming the same inode
   * is the same file, not a rewrite that happened to get a recycled inode number.
   */
  private async writable(): Promise<{ fh: FileHandle; st: { ino: number; size: number } }> {
    const st = await lstatUidlist(this.path);
    if (this.held !== undefined && st !== undefined && st.ino === this.held.ino) {
      this.held.timer.refresh();
      return { fh: this.held.fh, st };
    }
    await this.dropHeld();
    if (st === undefined) await this.rewrite(() => true); // creates the file, header first
    const fh = await openNoFollow(this.path, constants.O_RDWR);
    try {
      const own = await fh.stat();
      const timer = setTimeout(() => void this.serial.run(() => this.dropHeld()), HELD_IDLE_MS);
      timer.unref();
      this.held = { fh, ino: own.ino, timer, pinned: false };
      holding.delete(this);
      holding.add(this);
      // Bounded across the process: a delivery fanned out to thousands of maildrops at once
      // must not run it out of descriptors. The oldest kept handle goes first.
      for (const other of holding) {
        if (holding.size <= MAX_HELD) break;
        if (other !== this) void other.serial.run(() => other.dropHeld()).catch(() => undefined);
        holding.delete(other);
      }
      return { fh, st: own };
    } catch (err) {
      await fh.close().catch(() => {});
      throw err;
    }
  }

  private async dropHeld(): Promise<void> {
    const held = this.held;
    if (held === undefined) return;
    this.held = undefined;
    holding.delete(this);
    clearTimeout(held.timer);
    await held.fh.close().catch(() => {});
  }

  /** Lines in the file that no longer describe a live message (removed ones and their `D` records). */
  get garbage(): number {
    return this.lines - this.entries.size;
  }

  /**
   * Appends a durable `D` record for each name that has an entry, and forgets the entries, so
   * the names are free for new messages. The uids stay used. The caller holds the maildrop lock.
   */
  forget(names: readonly string[]): Promise<void> {
    return this.serial.run(async () => {
      const fh = await openForAppend(this.path);
      if (fh === undefined) return;
      try {
        if ((await this.readFrom(fh)) > this.offset) await fh.truncate(this.offset); // torn line
        const uids = names.map((n) => this.entries.get(n)?.uid).filter((u): u is number => u !== undefined);
        if (uids.length === 0) return;
        const bytes = Buffer.from(uids.map((u) => `D ${u}\n`).join(''), 'utf8');
        let written = 0;
        while (written < bytes.length) {
          const r = await fh.write(bytes, written, bytes.length - written, this.offset + written);
          written += r.bytesWritten;
        }
        await fh.datasync();
        for (const uid of uids) this.remove(uid);
        this.lines += uids.length;
        this.offset += bytes.length;
      } finally {
        await fh.close();
      }
    });
  }

  /** Rewrites the file keeping only the records whose name `keep` accepts; the caller holds the lock. */
  compact(keep: (key: string) => boolean): Promise<void> {
    return this.serial.run(() => this.rewrite(keep));
  }

  private async rewrite(keep: (key: string) => boolean): Promise<void> {
    const next = this.nextUid;
    const kept = [...this.entries].filter(([key]) => keep(key)).sort((a, b) => a[1].uid - b[1].uid);
    const header = `poplar-uidlist 1 next=${next} gen=${randomBytes(6).toString('hex')}`;
    const lines = kept.map(([key, e]) => record(key, e, this.uidls.get(e.uid)));
    const text = Buffer.from(`${header}\n${lines.join('')}`, 'utf8');
    const tmp = `${this.path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
      await fh.close();
      await rename(tmp, this.path);
    } catch (err) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(ignoreEnoent);
      throw err;
    }
    await fsyncDir(dirname(this.path));
    const fresh = await openNoFollow(this.path, constants.O_RDONLY);
    try {
      await this.readFrom(fresh); // a new header (gen) makes this a full read
    } finally {
      await fresh.close();
    }
  }

  /**
   * Brings the cache up to date from an open handle of the file. All reads come first; the
   * cache is then changed without an await, so callers never see it half-updated. Returns the
   * file's size as read (a writer holding the lock truncates a torn line beyond the records).
   */
  private async readFrom(fh: FileHandle, known?: { ino: number; size: number }): Promise<number> {
    const st = known ?? (await fh.stat());
    const headerBytes = Buffer.byteLength(this.header) + 1;
    // The held handle (writable()) pins its inode: the cache read it, so it is the same file.
    const pinned = known !== undefined && this.held?.fh === fh && this.held.pinned;
    const sameFile =
      st.ino === this.ino &&
      st.size >= this.offset &&
      this.offset >= headerBytes &&
      (pinned || (await readRange(fh, 0, headerBytes)).toString('utf8') === `${this.header}\n`);
    const from = sameFile ? this.offset : 0;
    const tail = await readRange(fh, from, st.size - from);
    if (!sameFile) this.reset(st.ino);
    const end = tail.lastIndexOf(0x0a) + 1; // bytes after the last LF are a torn line
    for (let at = 0; at < end; ) {
      const lf = tail.indexOf(0x0a, at);
      this.parse(tail, at, lf);
      at = lf + 1;
    }
    this.offset += end;
    if (this.held?.fh === fh) this.held.pinned = this.ino === this.held.ino;
    return from + tail.length;
  }

  /**
   * One line, `buf[from, to)` without its LF, read from the octets: no string per line, and each
   * base name is its own string (not a slice holding the whole file's text alive). Lines that are
   * not records poplar wrote are skipped, as HEADER, UIDL, REMOVED and ENTRY describe them.
   */
  private parse(buf: Buffer, from: number, to: number): void {
    const c = buf[from];
    if (c === 0x44 /* D */ || c === 0x55 /* U */) {
      if (buf[from + 1] !== 0x20) return;
      const end = digitsEnd(buf, from + 2, to);
      if (end < 0) return;
      const uid = decimal(buf, from + 2, end);
      if (c === 0x44) {
        if (end !== to) return;
        this.lines++;
        this.remove(uid);
        return;
      }
      const uidl = buf.toString('latin1', end + 1, to);
      if (buf[end] !== 0x20 || !UIDL_TEXT.test(uidl)) return;
      this.maxUid = Math.max(this.maxUid, uid);
      if (!this.uidls.has(uid)) this.uidls.set(uid, uidl);
      return;
    }
    if (c !== undefined && c >= 0x30 && c <= 0x39) {
      const uidEnd = digitsEnd(buf, from, to);
      if (uidEnd < 0 || buf[uidEnd] !== 0x20) return;
      const sizeEnd = digitsEnd(buf, uidEnd + 1, to);
      if (sizeEnd < 0 || buf[sizeEnd] !== 0x20 || sizeEnd + 1 >= to) return;
      const key = buf.toString('utf8', sizeEnd + 1, to);
      const uid = decimal(buf, from, uidEnd);
      this.maxUid = Math.max(this.maxUid, uid);
      this.lines++;
      this.entries.add(key, uid, decimal(buf, uidEnd + 1, sizeEnd));
      return;
    }
    const line = buf.toString('utf8', from, to);
    const header = HEADER.exec(line);
    if (header === null) return; // not a record poplar wrote: skipped
    if (this.header === '') this.header = line;
    this.nextFromHeader = Math.max(this.nextFromHeader, Number(header[1]));
  }

  /** Drops the live entry of `uid`, if any (a `D` record or its append). */
  private remove(uid: number): void {
    this.entries.removeUid(uid);
    this.uidls.delete(uid);
  }

  /** Forgets the cached records, keeping the next uid: a uid is never handed out twice. */
  private reset(ino: number): void {
    this.seen = undefined;
    this.nextFromHeader = this.nextUid;
    this.maxUid = 0;
    this.entries.clear();
    this.uidls.clear();
    this.lines = 0;
    this.ino = ino;
    this.header = '';
    this.offset = 0;
  }
}

/** The end of the 1 to 15 decimal digits at `buf[from]`, or -1 (none, or more than 15). */
function digitsEnd(buf: Buffer, from: number, to: number): number {
  let i = from;
  while (i < to && i - from <= 15 && buf[i]! >= 0x30 && buf[i]! <= 0x39) i++;
  return i === from || i - from > 15 ? -1 : i;
}

function decimal(buf: Buffer, from: number, to: number): number {
  let v = 0;
  for (let i = from; i < to; i++) v = v * 10 + (buf[i]! - 0x30);
  return v;
}

/** The line(s) of one message: its entry, then its carried-over UIDL if it has one. */
function record(key: string, e: UidEntry, uidl: string | undefined): string {
  return `${e.uid} ${e.size} ${key}\n` + (uidl === undefined ? '' : `U ${e.uid} ${uidl}\n`);
}

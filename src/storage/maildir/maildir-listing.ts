/**
 * The listing cache of a maildrop object (MaildirMaildrop, maildir-maildrop.ts): the compact,
 * uid-ordered message list of a login (message-list.ts) and where each file is, built by one full
 * scan and shared, immutable, by every later session while nothing changed (R-X9: one listing
 * per maildrop, whatever the number of sessions). A settled login then costs two directory stats and a uidlist refresh
 * instead of a 50,000-name readdir, parse and sort.
 *
 * Valid while new/ and cur/ keep their inode and ctime (stamped BEFORE they were listed, so a
 * change after the listing changes the stamp) and the uidlist's records are unchanged (its
 * `stamp`). ctime, not mtime: utimes(2) can set mtime back, nothing but the clock sets ctime.
 *
 * The "dirty" rule (as Dovecot's maildir code has it): a change made after our listing gets a
 * ctime equal to the stamped one if both fall within one timestamp tick, and would go unseen.
 * So a directory whose ctime is within the window of the time it was stamped is not trusted: the
 * listing is used by that login only and the next one lists again; once a scan happens a window
 * after the last change, the listing is kept. The window must exceed the file system's tick:
 * - Linux stamps inodes from the coarse clock, which lags the real one by at most one jiffy
 *   (1–10 ms, HZ 1000–100) on local file systems (ext4, XFS, btrfs, tmpfs; finer still with
 *   multigrain timestamps): DIRTY_WINDOW_MS = 100 ms is ten jiffies at the slowest HZ.
 * - Some file systems keep whole seconds (ext3 with 128-byte inodes, FAT keeps 2 s, some FUSE
 *   and network ones). Their ctimes have no nanoseconds, so a stamp whose nanosecond part is 0
 *   gets COARSE_WINDOW_MS (a fine one is 0 once in 10^9 stamps, and then merely rescans).
 * Not 1 s for everyone: right after a first sight (the renames into cur/) a window that long
 * makes the next logins, within a second, each pay a full scan of a big maildrop. Not covered:
 * a network file system whose server clock is off ours by more than the window.
 *
 * Changes made by this process invalidate explicitly too (commit, expire); a delivery changes
 * new/ or cur/, which changes its ctime.
 */
import { MessageListBuilder, type MessageList } from '../message-list.js';
import { sameStamp, type DirStamp, type MaildirScan } from './maildir-dir.js';
import { HIDDEN_FLAG } from './maildir-filename.js';
import type { UidList } from './maildir-uidlist.js';

export const DIRTY_WINDOW_MS = 100;
export const COARSE_WINDOW_MS = 2000;

/** What a message's path is around its base name: `<dir><base><suffix>` (`cur/`, `:2,S`). */
interface Shape {
  readonly dir: string;
  readonly suffix: string;
}

/**
 * A listing: the compact message list (message-list.ts) and where each file is. A path is kept
 * as a small shape number per message into a table of the few distinct shapes (`cur/…:2,S`,
 * `cur/…:2,`…), so no path string is held per message. Never mutated.
 */
export class Listing {
  constructor(
    readonly list: MessageList,
    private readonly shapes: readonly Shape[],
    /** Per list position, an index into `shapes`. */
    private readonly shapeOf: Uint8Array | Uint16Array | Uint32Array,
    readonly newStamp: DirStamp | undefined,
    readonly curStamp: DirStamp | undefined,
    readonly uidlistStamp: string,
    /** False when a directory was dirty at scan time: use once, list again next time. */
    readonly trusted: boolean,
  ) {}

  /** The path relative to the root of the listed message `id` (at position `at`, if known), undefined if it is not listed. */
  path(id: string, at?: number): string | undefined {
    const i = this.list.indexOf(id, at);
    if (i < 0) return undefined;
    const shape = this.shapes[this.shapeOf[i]!]!;
    return `${shape.dir}${id}${shape.suffix}`;
  }
}

/** Whether `listing` still describes the maildir whose directories now have these stamps. */
export function stillValid(listing: Listing, newStamp: DirStamp | undefined, curStamp: DirStamp | undefined, uidlist: UidList): boolean {
  return (
    listing.trusted &&
    sameStamp(listing.newStamp, newStamp) &&
    sameStamp(listing.curStamp, curStamp) &&
    listing.uidlistStamp === uidlist.stamp
  );
}

/**
 * The listing of a scan: every file with a uidlist record and without the `T` flag (R-X12),
 * sorted by uid. No await: the records and the uidlist stamp are read at one instant.
 */
export function buildListing(scan: MaildirScan, uidlist: UidList, dirtyWindowMs: number, clean: boolean): Listing {
  const b = new MessageListBuilder(scan.found.size);
  const shapeIds = new Map<string, number>();
  const shapes: Shape[] = [];
  const shapeAt = new Uint32Array(scan.found.size);
  for (const [id, rel] of scan.found) {
    const slot = uidlist.entries.slot(id);
    if (slot < 0) continue;
    const flags = flagsOf(rel);
    if (flags.includes(HIDDEN_FLAG)) continue;
    const slash = rel.indexOf('/') + 1;
    const key = rel.slice(0, slash) + '/' + rel.slice(slash + id.length);
    let shape = shapeIds.get(key);
    if (shape === undefined) {
      shape = shapes.push({ dir: rel.slice(0, slash), suffix: rel.slice(slash + id.length) }) - 1;
      shapeIds.set(key, shape);
    }
    shapeAt[b.length] = shape;
    const uid = uidlist.entries.uidAt(slot);
    // The uidlist's string for the name, not the scan's: the listing adds no string per message.
    b.add(uid, uidlist.entries.sizeAt(slot), flags.includes('S'), uidlist.entries.nameAt(slot), uidlist.uidls.get(uid));
  }
  const { list, order } = b.finishByUid();
  const shapeOf = shapes.length <= 0x100 ? new Uint8Array(list.length) : shapes.length <= 0x10000 ? new Uint16Array(list.length) : new Uint32Array(list.length);
  for (let k = 0; k < list.length; k++) shapeOf[k] = shapeAt[order[k]!]!;
  const settled = (s: DirStamp | undefined, at: number): boolean => {
    if (s === undefined) return false;
    const window = s.ctimeMs % 1000 === 0 ? Math.max(dirtyWindowMs, COARSE_WINDOW_MS) : dirtyWindowMs;
    return s.ctimeMs < at - window;
  };
  const trusted = clean && settled(scan.newStamp, scan.newAt) && settled(scan.curStamp, scan.curAt);
  return new Listing(list, shapes, shapeOf, scan.newStamp, scan.curStamp, uidlist.stamp, trusted);
}

/** The flags of a `cur/<base>:2,<flags>` path ('' without an info part). */
function flagsOf(rel: string): string {
  const colon = rel.indexOf(':');
  return colon >= 0 && rel.startsWith('2,', colon + 1) ? rel.slice(colon + 3) : '';
}

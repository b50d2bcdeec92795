/**
 * The listing cache of a maildrop object (MaildirMaildrop, maildir-maildrop.ts): the sorted MessageInfo array of a login and the
 * base name -> path map, built by one full scan and shared, immutable, by every later session
 * while nothing changed. A settled login then costs two directory stats and a uidlist refresh
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
import type { MessageInfo } from '../mail-store.js';
import { sameStamp, type DirStamp, type MaildirScan } from './maildir-dir.js';
import { HIDDEN_FLAG } from './maildir-filename.js';
import type { UidList } from './maildir-uidlist.js';

export const DIRTY_WINDOW_MS = 100;
export const COARSE_WINDOW_MS = 2000;

export interface Listing {
  readonly messages: readonly MessageInfo[];
  /** Base name -> path relative to the root of each listed message. Never mutated. */
  readonly paths: ReadonlyMap<string, string>;
  readonly newStamp: DirStamp | undefined;
  readonly curStamp: DirStamp | undefined;
  readonly uidlistStamp: string;
  /** False when a directory was dirty at scan time: use once, list again next time. */
  readonly trusted: boolean;
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
  let messages: MessageInfo[] = [];
  const paths = new Map<string, string>();
  for (const [id, rel] of scan.found) {
    const entry = uidlist.entries.get(id);
    if (entry === undefined) continue;
    const flags = flagsOf(rel);
    if (flags.includes(HIDDEN_FLAG)) continue;
    paths.set(id, rel);
    const uidl = uidlist.uidls.get(entry.uid);
    messages.push(
      uidl === undefined
        ? { uid: entry.uid, size: entry.size, seen: flags.includes('S'), id }
        : { uid: entry.uid, size: entry.size, seen: flags.includes('S'), id, uidl },
    );
  }
  messages = byUid(messages);
  const settled = (s: DirStamp | undefined, at: number): boolean => {
    if (s === undefined) return false;
    const window = s.ctimeMs % 1000 === 0 ? Math.max(dirtyWindowMs, COARSE_WINDOW_MS) : dirtyWindowMs;
    return s.ctimeMs < at - window;
  };
  return {
    messages: Object.freeze(messages),
    paths,
    newStamp: scan.newStamp,
    curStamp: scan.curStamp,
    uidlistStamp: uidlist.stamp,
    trusted: clean && settled(scan.newStamp, scan.newAt) && settled(scan.curStamp, scan.curAt),
  };
}

/** The flags of a `cur/<base>:2,<flags>` path ('' without an info part). */
function flagsOf(rel: string): string {
  const colon = rel.indexOf(':');
  return colon >= 0 && rel.startsWith('2,', colon + 1) ? rel.slice(colon + 3) : '';
}

/**
 * `messages` in uid order. Uids are dense (assigned consecutively, R-S12), so placing each at
 * uid - min is O(n); sparse ones (many removed) fall back to a sort.
 */
function byUid(messages: MessageInfo[]): MessageInfo[] {
  if (messages.length === 0) return messages;
  let min = Infinity;
  let max = -Infinity;
  for (const m of messages) {
    if (m.uid < min) min = m.uid;
    if (m.uid > max) max = m.uid;
  }
  const span = max - min + 1;
  if (span > 4 * messages.length + 64) return messages.sort((a, b) => a.uid - b.uid);
  const slots: (MessageInfo | undefined)[] = new Array(span).fill(undefined);
  for (const m of messages) slots[m.uid - min] = m;
  const out: MessageInfo[] = [];
  for (const m of slots) if (m !== undefined) out.push(m);
  return out;
}

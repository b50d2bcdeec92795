/**
 * The per-process listing cache of a maildrop: the sorted MessageInfo array of a login and the
 * base name -> path map, built by one full scan and shared, immutable, by every later session
 * while nothing changed. A settled login then costs two directory stats and a uidlist refresh
 * instead of a 50,000-name readdir, parse and sort.
 *
 * Valid while new/ and cur/ keep their inode and ctime (stamped BEFORE they were listed, so a
 * change after the listing changes the stamp) and the uidlist's records are unchanged (its
 * `stamp`). ctime, not mtime: utimes(2) can set mtime back, nothing but the clock sets ctime.
 *
 * The "dirty" rule (as Dovecot's maildir code has it): a change made after our listing gets a
 * ctime equal to the stamped one if both fall within one timestamp tick. Linux stamps inodes
 * with the coarse clock, one jiffy (1–10 ms) behind the real one, on local file systems; some
 * file systems keep whole seconds (ext3 with small inodes, many network and FUSE ones). So a
 * directory whose ctime is within DIRTY_WINDOW_MS of the time of the scan is not trusted and
 * is listed again next time; once a scan happens a window after the last change, the listing
 * is kept. One second covers whole-second file systems; its cost is that the logins within a
 * second of a change pay a full scan, which is what every login paid before this cache.
 * (A network file system whose server clock is off ours by more than the window is not covered.)
 *
 * Changes made by this process invalidate explicitly too (commit, expire); a delivery changes
 * new/ or cur/, which changes its ctime.
 */
import type { MessageInfo } from '../mail-store.js';
import { sameStamp, type DirStamp, type MaildirScan } from './maildir-dir.js';
import { HIDDEN_FLAG } from './maildir-filename.js';
import type { UidList } from './maildir-uidlist.js';

export const DIRTY_WINDOW_MS = 1000;

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
  const messages: MessageInfo[] = [];
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
  messages.sort((a, b) => a.uid - b.uid);
  const settled = (s: DirStamp | undefined): boolean =>
    s !== undefined && Number(s.ctimeNs / 1_000_000n) < scan.at - dirtyWindowMs;
  return {
    messages: Object.freeze(messages),
    paths,
    newStamp: scan.newStamp,
    curStamp: scan.curStamp,
    uidlistStamp: uidlist.stamp,
    trusted: clean && settled(scan.newStamp) && settled(scan.curStamp),
  };
}

/** The flags of a `cur/<base>:2,<flags>` path ('' without an info part). */
function flagsOf(rel: string): string {
  const colon = rel.indexOf(':');
  return colon >= 0 && rel.startsWith('2,', colon + 1) ? rel.slice(colon + 3) : '';
}

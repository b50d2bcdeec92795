/**
 * A full scan of a maildrop with uid assignment (R-S4, R-S12): new/ is moved to cur/, files seen
 * for the first time get their uid and exact size in the uidlist, and a uidlist mostly made of
 * records of vanished files is compacted. Called by MaildirMaildrop (listing, expiry), which
 * passes its uidlist and its `locked` runner (the uidlist lock, maildir-maildrop.ts).
 */
import { join } from 'node:path';
import { crlfSizeOf, crlfSizes } from './maildir-bulk.js';
import { listBases, listFiles, scanMaildir, type MaildirScan } from './maildir-dir.js';
import { compareDeliveryOrder, sizeFromName } from './maildir-filename.js';
import type { MaildirLogger } from './maildir-links.js';
import type { UidList } from './maildir-uidlist.js';

/** Compact the uidlist once this many records name vanished files and they outnumber the live. */
const COMPACT_MIN_DEAD = 32;

/**
 * Moves new/ to cur/, gives files seen for the first time their uid and exact size (R-S4,
 * R-S12), and returns the scan (base name -> relative path of every message found). Sizes are
 * computed before taking the lock, so the lock is held only for the uidlist append. `clean` is
 * false when a file moved during the scan (the listing is then used once, not cached).
 */
export async function scanAndAssign(
  root: string,
  uidlist: UidList,
  locked: (fn: () => Promise<void>) => Promise<void>,
  logger: MaildirLogger | undefined,
): Promise<{ scan: MaildirScan; clean: boolean }> {
  const scan = await scanMaildir(root, logger);
  const { found } = scan;
  await uidlist.refresh();
  const unknown: { key: string; size: number }[] = [];
  const toSize: string[] = [];
  let live = 0;
  for (const key of found.keys()) {
    if (uidlist.entries.has(key)) {
      live++;
      continue;
    }
    const size = sizeFromName(key) ?? scan.sized.get(key);
    if (size === undefined) toSize.push(key);
    else unknown.push({ key, size });
  }
  scan.sized.clear(); // read: not held through the sizing and the append below
  let clean = true;
  if (toSize.length > 0) {
    const sizes = await crlfSizes(root, toSize.map((key) => found.get(key)!));
    let moved: Map<string, string> | undefined;
    for (let i = 0; i < toSize.length; i++) {
      const key = toSize[i]!;
      let size = sizes[i];
      if (size === undefined) {
        // Renamed (a flag change) or removed meanwhile: follow one rename, else drop it.
        clean = false;
        moved ??= await listFiles(root);
        const rel = moved.get(key);
        size = rel === undefined ? undefined : await crlfSizeOf(join(root, rel));
        if (size === undefined) found.delete(key);
        else found.set(key, rel!);
      }
      if (size !== undefined) unknown.push({ key, size });
    }
  }
  if (unknown.length === 0 && !compactionPays(uidlist, live)) return { scan, clean };
  await locked(async () => {
    await uidlist.refresh();
    unknown.sort((a, b) => compareDeliveryOrder(a.key, b.key));
    await uidlist.append(
      unknown.filter((u) => !uidlist.entries.has(u.key)),
      { entries: false },
    );
    if (compactionPays(uidlist, liveIn(uidlist, found))) {
      // A file renamed during the first listing may have been missed: list again before dropping.
      const present = await listBases(root);
      await uidlist.compact((key) => found.has(key) || present.has(key));
    }
  });
  return { scan, clean };
}

/** How many of `found` have a uidlist record. */
function liveIn(uidlist: UidList, found: ReadonlyMap<string, string>): number {
  let live = 0;
  for (const key of found.keys()) if (uidlist.entries.has(key)) live++;
  return live;
}

/** The uidlist's lines for gone messages are many and outnumber the live ones. */
function compactionPays(uidlist: UidList, live: number): boolean {
  const dead = uidlist.garbage + uidlist.entries.size - live;
  return dead >= COMPACT_MIN_DEAD && dead > live;
}

/**
 * R-S16 R-S17 quotas inside a Maildir delivery batch's commit (MaildirMaildrop.commitDeliveries,
 * maildir-maildrop.ts), which holds the uidlist lock: the lock every process's delivery batches,
 * first sights and `D` records take (the lock table in maildir-maildrop.ts). What the quota counts
 * is read under that lock, so batches of any number of processes are checked one after another
 * against what the previous ones kept.
 */
import { join } from 'node:path';
import { overQuota, type DeliveryResult, type QuotaLimit, type Usage } from '../mail-store.js';
import { crlfSizeOf } from './maildir-bulk.js';
import { withdraw, writeToNew } from './maildir-deliver.js';
import { fsyncDir, listFiles } from './maildir-dir.js';
import { sizeFromName } from './maildir-filename.js';
import type { NewEntry, UidEntry, UidList } from './maildir-uidlist.js';

/** A delivery waiting for its batch: its uidlist record, the folder its file is in, its quota. */
export interface PendingDelivery extends NewEntry {
  readonly dir: string;
  /** Its file, relative to the root (withdrawn under the lock if the quota refuses it). */
  readonly rel: string;
  readonly quota?: QuotaLimit;
}

/** A batch member's outcome: its record (and usage and warning, under a quota), or refused by its quota. */
export type Committed =
  | { readonly entry: UidEntry; readonly usage?: DeliveryResult['usage']; readonly warning?: DeliveryResult['warning'] }
  | { readonly refused: true };

/**
 * What the quota counts, from the files listed and the uidlist (refreshed by the caller): every
 * file in cur/, and every file in new/ that has a uid record. A file in new/ without one is a
 * delivery not yet committed (this process's or another's: it is counted by its own commit,
 * under the uidlist lock) or one another program dropped in (counted from the first login that
 * sees it). Hidden files count (they take space). `skip`: base names left out (the batch being
 * committed).
 */
export async function quotaUsage(root: string, uidlist: UidList, files: ReadonlyMap<string, string>, skip: ReadonlySet<string>): Promise<Usage> {
  let messages = 0;
  let bytes = 0;
  for (const [base, rel] of files) {
    if (skip.has(base)) continue;
    const recorded = uidlist.entries.get(base)?.size;
    if (recorded === undefined && rel.startsWith('new/')) continue;
    const size = recorded ?? sizeFromName(base) ?? (await crlfSizeOf(join(root, rel)));
    if (size === undefined) continue; // removed meanwhile
    messages++;
    bytes += size;
  }
  return { messages, bytes };
}

/**
 * Commits a batch some of whose members have a quota, holding the uidlist lock: the usage is
 * what the uidlist and the folders hold now (`quotaUsage`), the members are admitted in order
 * against it, and a refused member's file is removed before the lock is released, so the next
 * batch (of any process) counts exactly what was kept. A warning (QuotaLimit.warn) is written,
 * fsynced and renamed into new/ here, and recorded right after its message in the same append;
 * if the batch fails, the warnings' files are removed with it.
 */
export async function commitUnderQuota(root: string, uidlist: UidList, items: readonly PendingDelivery[], uniqueName: () => string): Promise<Committed[]> {
  await uidlist.refresh();
  let usage = await quotaUsage(root, uidlist, await listFiles(root), new Set(items.map((i) => i.key)));
  const accepted: PendingDelivery[] = [];
  const warnings: PendingDelivery[] = [];
  const steps: ({ usage?: DeliveryResult['usage']; warned: boolean } | null)[] = [];
  try {
    for (const item of items) {
      if (item.quota !== undefined && overQuota(usage, item.size, item.quota)) {
        await withdraw(root, item.rel);
        steps.push(null);
        continue;
      }
      const before = usage;
      usage = { messages: usage.messages + 1, bytes: usage.bytes + item.size };
      accepted.push(item);
      const w = item.quota?.warn?.(before, usage);
      steps.push({ ...(item.quota === undefined ? {} : { usage: { before, after: usage } }), warned: w !== undefined });
      if (w === undefined) continue;
      const { name, rel, size } = await writeToNew(root, w, {}, uniqueName);
      const warning = { key: name, size, dir: 'new', rel };
      warnings.push(warning);
      accepted.push(warning);
      usage = { messages: usage.messages + 1, bytes: usage.bytes + size };
    }
    if (warnings.length > 0) await fsyncDir(join(root, 'new'));
    const entries = await uidlist.append(accepted);
    let next = 0;
    return steps.map((step) => {
      if (step === null) return { refused: true } as const;
      const entry = entries[next++]!;
      const warned = step.warned ? entries[next++]! : undefined;
      return {
        entry,
        ...(step.usage === undefined ? {} : { usage: step.usage }),
        ...(warned === undefined ? {} : { warning: { uid: warned.uid, size: warned.size } }),
      };
    });
  } catch (err) {
    for (const w of warnings) await withdraw(root, w.rel);
    throw err;
  }
}

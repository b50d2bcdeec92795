/**
 * Bulk import into a maildrop (R-X15) from mbox or Maildir, keeping what clients already know
 * (R-X11): each message keeps the UIDL the old server showed (Dovecot uidlist, `X-UIDL:`), its
 * retrieved state and its arrival time. A carried UIDL is dropped (the message then shows its new
 * uid) when it is not a valid UIDL, when it is a plain decimal number (it could collide with a
 * uid poplar assigns later), or when the maildrop already shows it. The change of the maildrop's
 * UIDL list is logged once, with the counts.
 */
import { stat } from 'node:fs/promises';
import type { Logger } from '../observability/logger.js';
import { isValidUidl, type DeliverOptions, type MailStore } from '../storage/mail-store.js';
import { headerValue } from './headers.js';
import { readMaildirSource, readSourceFile } from './maildir-source.js';
import { readMbox } from './mbox.js';
import { Progress } from './progress.js';

export type MailFormat = 'mbox' | 'maildir';

export interface ImportReport {
  readonly imported: number;
  readonly bytes: number;
  /** Messages that kept the UIDL of the old server. */
  readonly carried: number;
  /** Carried UIDLs refused (invalid, decimal, duplicate): those messages show their new uid. */
  readonly dropped: number;
}

interface Incoming {
  readonly bytes: Buffer;
  readonly uidl: string | undefined;
  readonly seen: boolean;
  readonly received: number | undefined;
}

/** `maildir` if PATH is a directory with cur/ or new/, else `mbox`. */
export async function detectFormat(path: string): Promise<MailFormat> {
  const st = await stat(path);
  if (!st.isDirectory()) return 'mbox';
  for (const sub of ['cur', 'new']) {
    if (await stat(`${path}/${sub}`).then((s) => s.isDirectory(), () => false)) return 'maildir';
  }
  throw new Error(`${path} is a directory without cur/ or new/: not a Maildir`);
}

async function* source(path: string, format: MailFormat, logger: Logger): AsyncGenerator<Incoming> {
  if (format === 'mbox') {
    for await (const m of readMbox(path)) {
      yield { bytes: m.bytes, uidl: headerValue(m.bytes, 'X-UIDL'), seen: m.seen, received: m.received };
    }
    return;
  }
  for (const m of await readMaildirSource(path, logger)) {
    yield { bytes: await readSourceFile(m.path), uidl: m.uidl, seen: m.seen, received: m.received };
  }
}

async function countMessages(path: string, format: MailFormat): Promise<number | undefined> {
  return format === 'maildir' ? (await readMaildirSource(path)).length : undefined;
}

export async function importMail(
  store: MailStore,
  mailbox: string,
  path: string,
  format: MailFormat,
  logger: Logger,
  progressOut?: NodeJS.WriteStream,
): Promise<ImportReport> {
  const snapshot = await store.open(mailbox, { exclusive: false });
  const shown = new Set(snapshot.messages.map((m) => m.uidl ?? String(m.uid)));
  const before = snapshot.messages.length;
  await snapshot.release();
  const progress = new Progress(`import ${mailbox}`, await countMessages(path, format), progressOut);
  let imported = 0;
  let bytes = 0;
  let carried = 0;
  let dropped = 0;
  for await (const m of source(path, format, logger)) {
    let uidl = m.uidl;
    if (uidl !== undefined && (!isValidUidl(uidl) || /^[1-9][0-9]*$/.test(uidl) || shown.has(uidl))) {
      logger.warn({ event: 'uidl_dropped', mailbox, uidl: uidl.slice(0, 80) }, 'carried UIDL refused; the message gets a new one');
      uidl = undefined;
      dropped++;
    }
    const opts: DeliverOptions = {
      seen: m.seen,
      ...(uidl === undefined ? {} : { uidl }),
      ...(m.received === undefined ? {} : { received: m.received }),
    };
    const r = await store.deliver(mailbox, m.bytes, opts);
    shown.add(uidl ?? String(r.uid));
    if (uidl !== undefined) carried++;
    imported++;
    bytes += r.size;
    progress.tick(r.size);
  }
  progress.finish();
  logger.info(
    { event: 'uidl_list_changed', mailbox, reason: 'import', source: path, format, before, added: imported, carried, dropped },
    'UIDL list of the maildrop changed by import',
  );
  return { imported, bytes, carried, dropped };
}

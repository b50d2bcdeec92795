/**
 * Bulk import into a maildrop (R-X15) from mbox or Maildir, keeping what clients already know
 * (R-X11): each message keeps the UIDL the old server showed (Dovecot uidlist, `X-UIDL:`), its
 * retrieved state and its arrival time. A carried UIDL that is a plain decimal number is a uid (what
 * poplar shows for its own mail, so an export of a poplar maildrop carries them): the message is
 * given that uid (DeliverOptions.uid) when no uid at or above it was given in the maildrop, and
 * so keeps its UIDL; it could not be kept as a UIDL beside the uids (a later delivery would show the
 * same one). Any other carried UIDL is dropped (the message then shows its new uid) when it is not
 * a valid UIDL, when it is decimal, or when the maildrop already shows it. The change of the maildrop's
 * UIDL list is logged once, with the counts. A source that is missing, unreadable or not of its
 * format is refused before anything is imported, with a MigrateError.
 */
import { open, readdir, readFile, stat } from 'node:fs/promises';
import type { Logger } from '../observability/logger.js';
import { MigrateError } from './errors.js';

export { MigrateError };
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

/**
 * A Node file system error (ENOENT, EACCES, ENOTDIR …) as a MigrateError, e.g. `cannot read
 * /srv/old.mbox: permission denied`; any other error unchanged.
 */
export function migrateError(err: unknown, verb: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (!(e instanceof Error) || typeof e.code !== 'string' || typeof e.syscall !== 'string') return err;
  const reason = /^[A-Z0-9]+: ([^,]+)/.exec(e.message)?.[1] ?? e.code;
  return new MigrateError(`${verb} ${e.path ?? ''}: ${reason}`);
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isDirectory(), () => false);
}

/** `maildir` if PATH is a directory with cur/ or new/, else `mbox`. */
export async function detectFormat(path: string): Promise<MailFormat> {
  const st = await stat(path).catch((err: unknown) => {
    throw migrateError(err, 'cannot read');
  });
  if (!st.isDirectory()) return 'mbox';
  for (const sub of ['cur', 'new']) if (await isDirectory(`${path}/${sub}`)) return 'maildir';
  throw new MigrateError(`${path} is a directory without cur/ or new/: not a Maildir`);
}

/** Refuses a source that is missing, unreadable or not of `format`, before anything is imported. */
async function checkSource(path: string, format: MailFormat): Promise<void> {
  const st = await stat(path);
  if (format === 'maildir') {
    if (!st.isDirectory()) throw new MigrateError(`${path} is not a Maildir: not a directory`);
    const subs = [];
    for (const sub of ['cur', 'new']) if (await isDirectory(`${path}/${sub}`)) subs.push(sub);
    if (subs.length === 0) throw new MigrateError(`${path} is a directory without cur/ or new/: not a Maildir`);
    for (const sub of subs) await readdir(`${path}/${sub}`);
    return;
  }
  if (!st.isFile()) throw new MigrateError(`${path} is not an mbox file: ${st.isDirectory() ? 'a directory' : 'not a regular file'}`);
  const fh = await open(path, 'r');
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(4096), 0, 4096, 0);
    const text = buffer.subarray(0, bytesRead).toString('latin1').replace(/^[\r\n]+/, '');
    if (text !== '' && !text.startsWith('From ')) throw new MigrateError(`${path} is not an mbox file: it does not start with a "From " line`);
  } finally {
    await fh.close();
  }
}

/** The source's messages; a file system error while reading them becomes a MigrateError. */
async function* reading(items: AsyncIterable<Incoming>): AsyncGenerator<Incoming> {
  try {
    for await (const m of items) yield m;
  } catch (err) {
    throw migrateError(err, 'cannot read');
  }
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
  const total = await checkSource(path, format)
    .then(() => countMessages(path, format))
    .catch((err: unknown) => {
      throw migrateError(err, 'cannot read');
    });
  const snapshot = await store.open(mailbox, { exclusive: false });
  const shown = new Set(snapshot.messages.map((m) => m.uidl ?? String(m.uid)));
  const before = snapshot.messages.length;
  await snapshot.release();
  const progress = new Progress(`import ${mailbox}`, total, progressOut);
  let imported = 0;
  let bytes = 0;
  let carried = 0;
  let dropped = 0;
  let failed = true;
  try {
    for await (const m of reading(source(path, format, logger))) {
      let uidl = m.uidl;
      // A decimal UIDL is a uid (poplar's own mail): kept only as the message's uid, since a later
      // delivery would show the same decimal UIDL. The store gives that uid if it is still free.
      let uid: number | undefined;
      if (uidl !== undefined && /^[1-9][0-9]{0,14}$/.test(uidl) && !shown.has(uidl)) {
        uid = Number(uidl);
        uidl = undefined;
      }
      const refuse = (refused: string): void => {
        logger.warn({ event: 'uidl_dropped', mailbox, uidl: refused.slice(0, 80) }, 'carried UIDL refused; the message gets a new one');
        dropped++;
      };
      if (uidl !== undefined && (!isValidUidl(uidl) || /^[1-9][0-9]*$/.test(uidl) || shown.has(uidl))) {
        refuse(uidl);
        uidl = undefined;
      }
      const opts: DeliverOptions = {
        seen: m.seen,
        ...(uidl === undefined ? {} : { uidl }),
        ...(uid === undefined ? {} : { uid }),
        ...(m.received === undefined ? {} : { received: m.received }),
      };
      const r = await store.deliver(mailbox, m.bytes, opts);
      shown.add(uidl ?? String(r.uid));
      if (uidl !== undefined || (uid !== undefined && r.uid === uid)) carried++;
      else if (uid !== undefined) refuse(String(uid));
      imported++;
      bytes += r.size;
      progress.tick(r.size);
    }
    failed = false;
  } catch (err) {
    if (err instanceof MigrateError && imported > 0) throw new MigrateError(`${err.message} (import stopped after ${imported} message(s))`);
    throw err;
  } finally {
    progress.finish(failed ? 'stopped' : 'done');
    if (!failed || imported > 0) {
      logger.info(
        { event: 'uidl_list_changed', mailbox, reason: 'import', source: path, format, before, added: imported, carried, dropped, ...(failed ? { stopped: true } : {}) },
        'UIDL list of the maildrop changed by import',
      );
    }
  }
  return { imported, bytes, carried, dropped };
}

/**
 * The file half of a Maildir delivery (R-X6): the message is written to tmp/ under a unique name,
 * fsynced and renamed into new/ (the Maildir spec's delivery). Making it durable in new/ and
 * giving it a uid is the maildrop's group commit (MaildirMaildrop.deliver, maildir-commit.ts).
 */
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { CrlfSizer } from '../../protocol/crlf.js';
import type { DeliverOptions } from '../mail-store.js';
import { locate } from './maildir-dir.js';
import { errCode, ignoreEnoent } from './maildir-errors.js';
import { parseName } from './maildir-filename.js';
import { assertRealDir, assertRealDirSync } from './maildir-links.js';

export interface WrittenMessage {
  /** The base name: `<unique>,S=<raw octets>,W=<CRLF octets>`. */
  readonly name: string;
  /** The path relative to the root: `new/<name>`, or `cur/<name>:2,S` for `seen`. */
  readonly rel: string;
  /** The CRLF size (R-S4). */
  readonly size: number;
}

/**
 * Writes the message to tmp/ under a unique name, fsyncs it and renames it into new/ as
 * `<unique>,S=<raw octets>,W=<CRLF octets>` (Maildir spec delivery; Dovecot's size fields).
 * `uniqueName` gives a new unique base name (maildir-filename.ts newUniqueName). `onLoop`: the
 * folders are checked with lstat(2) on the server thread (`storage.maildir_reads = "event-loop"`).
 */
export async function writeToNew(
  root: string,
  message: Buffer | AsyncIterable<Buffer>,
  opts: DeliverOptions,
  uniqueName: () => string,
  onLoop = false,
): Promise<WrittenMessage> {
  // The file is created and renamed by path: neither folder may be a link to another directory.
  const into = opts.seen === true ? 'cur' : 'new';
  const folders = [root, join(root, 'tmp'), join(root, into)];
  if (onLoop) for (const f of folders) assertRealDirSync(f);
  else await Promise.all(folders.map(assertRealDir));
  const { unique, fh } = await createTmp(root, uniqueName);
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

/**
 * Removes a delivered file that was not acknowledged (R-X6: it leaves nothing behind if it can
 * help it). A login may have moved it to cur/ meanwhile (first sight): found by its base name then.
 */
export async function withdraw(root: string, rel: string): Promise<void> {
  await unlink(join(root, rel)).catch(async () => {
    const moved = await locate(root, parseName(basename(rel)).base).catch(() => undefined);
    if (moved !== undefined) await unlink(join(root, moved)).catch(() => {});
  });
}

/** Creates tmp/<unique> with O_EXCL, so even a name collision can never overwrite a file. */
async function createTmp(root: string, uniqueName: () => string): Promise<{ unique: string; fh: FileHandle }> {
  for (let attempt = 0; ; attempt++) {
    const unique = uniqueName();
    try {
      return { unique, fh: await open(join(root, 'tmp', unique), 'wx', 0o600) };
    } catch (err) {
      if (errCode(err) !== 'EEXIST' || attempt >= 10) throw err;
    }
  }
}

async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let written = 0;
  while (written < chunk.length) {
    written += (await fh.write(chunk, written, chunk.length - written)).bytesWritten;
  }
}

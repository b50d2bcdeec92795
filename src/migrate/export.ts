/**
 * Export of a maildrop (R-X15) to mbox or Maildir, carrying what a client knows (R-X11): the
 * Maildir gets a `dovecot-uidlist` whose P fields hold each message's UIDL (Dovecot then shows
 * the same UIDLs), and every mbox message without one gets an `X-UIDL:` header with its UIDL
 * (Dovecot's `pop3_reuse_xuidl` and poplar's import read it). Retrieved messages get the Maildir
 * S flag. The maildrop is read through an ordinary snapshot and is not changed. A target that
 * exists already or cannot be created or written is refused with a one-line MigrateError.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { crlfSize } from '../protocol/crlf.js';
import type { MailStore, MessageInfo } from '../storage/mail-store.js';
import { formatDovecotUidlist } from './dovecot-uidlist.js';
import { headerValue } from './headers.js';
import { MigrateError, migrateError, type MailFormat } from './import.js';
import { writeMboxMessage } from './mbox.js';
import { Progress } from './progress.js';

async function readMessage(read: () => Promise<NodeJS.ReadableStream>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await read()) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const uidlOf = (m: MessageInfo): string => m.uidl ?? String(m.uid);

/** A file system error on the target `path` (or a file in it) as a MigrateError; others unchanged. */
function targetError(err: unknown, path: string, created: boolean): unknown {
  const e = err as NodeJS.ErrnoException;
  if (!(e instanceof Error) || typeof e.path !== 'string' || !e.path.startsWith(path)) return err;
  if (e.path === path && e.code === 'EEXIST') return new MigrateError(`${path} exists already`);
  if (e.path === path && e.code === 'ENOENT') return new MigrateError(`cannot create ${path}: its parent directory does not exist`);
  const converted = migrateError(err, e.path === path ? 'cannot create' : 'cannot write');
  if (!(converted instanceof MigrateError) || !created) return converted;
  return new MigrateError(`${converted.message} (export stopped; ${path} is incomplete)`);
}

export async function exportMail(
  store: MailStore,
  mailbox: string,
  path: string,
  format: MailFormat,
  progressOut?: NodeJS.WriteStream,
): Promise<{ exported: number; bytes: number }> {
  const snapshot = await store.open(mailbox, { exclusive: false });
  const progress = new Progress(`export ${mailbox}`, snapshot.messages.length, progressOut);
  let bytes = 0;
  let created = false;
  try {
    if (format === 'mbox') {
      const fh = await open(path, 'wx', 0o600);
      created = true;
      try {
        for (const m of snapshot.messages) {
          let body = await readMessage(() => snapshot.read(m.id));
          if (headerValue(body, 'X-UIDL') === undefined) {
            const eol = body.includes('\r\n') ? '\r\n' : '\n';
            body = Buffer.concat([Buffer.from(`X-UIDL: ${uidlOf(m)}${eol}`), body]);
          }
          await writeMboxMessage(fh, body, new Date());
          bytes += m.size;
          progress.tick(m.size);
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
    } else {
      await mkdir(path, { mode: 0o700 }); // EEXIST: never mix into (or clobber the uidlist of) a Maildir
      created = true;
      for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(path, sub), { mode: 0o700 });
      const host = hostname().replace(/\//g, '\\057').replace(/:/g, '\\072');
      const entries: { uid: number; uidl: string; size: number; file: string }[] = [];
      const now = Math.floor(Date.now() / 1000);
      for (const [i, m] of snapshot.messages.entries()) {
        const body = await readMessage(() => snapshot.read(m.id));
        const base = `${now}.M${i}P${process.pid}R${randomBytes(4).toString('hex')}.${host},S=${body.length},W=${crlfSize(body)}`;
        const tmp = join(path, 'tmp', base);
        await writeFile(tmp, body, { mode: 0o600, flag: 'wx' });
        await rename(tmp, join(path, 'cur', `${base}:2,${m.seen ? 'S' : ''}`));
        entries.push({ uid: m.uid, uidl: uidlOf(m), size: m.size, file: base });
        bytes += m.size;
        progress.tick(m.size);
      }
      await writeFile(join(path, 'dovecot-uidlist'), formatDovecotUidlist(now, entries), { mode: 0o600 });
    }
  } catch (err) {
    if (created) progress.finish('stopped');
    throw targetError(err, path, created);
  } finally {
    await snapshot.release();
  }
  progress.finish();
  return { exported: snapshot.messages.length, bytes };
}

/**
 * Reads a Maildir another program wrote (Dovecot, Courier, mutt, an old poplar) for import
 * (R-X15), with the UIDL each message had there (R-X11): the P field of `dovecot-uidlist`, else
 * Dovecot's default `%08Xu%08Xv` from its uid and uidvalidity, else an `X-UIDL:` header.
 *
 * Nothing in the source is reached through a symbolic link (the source may be a user's own
 * Maildir, and the import runs with the server's rights): a Maildir whose root, cur/ or new/ is
 * a link is refused, a message file that is a link is left out and logged, and every file is
 * opened with O_NOFOLLOW.
 */
import { constants } from 'node:fs';
import { lstat, open, readdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { dovecotDefaultUidl, parseDovecotUidlist } from './dovecot-uidlist.js';
import { headerValue } from './headers.js';
import { MigrateError } from './errors.js';
import { IMPORT_HEADER_READ } from '../protocol/limits.js';
import { isLinkError } from '../storage/maildir/maildir-links.js';

export interface SourceMessage {
  readonly path: string;
  readonly seen: boolean;
  readonly received: number;
  /** The UIDL the old server showed, if it can be known. */
  readonly uidl: string | undefined;
  /** Where the UIDL came from, for the log. */
  readonly uidlSource: 'dovecot-uidlist' | 'x-uidl' | undefined;
  /** Sort key: the old uid, if the uidlist has one. */
  readonly uid: number | undefined;
}

/** A source that cannot be imported as it is (a link where a directory or file must be). */
export class ImportSourceError extends MigrateError {}

/** Where links left out are reported (a pino Logger fits). */
export interface SourceLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
}

/** Flags of every open(2) of a source file: never through a link, never blocked by a FIFO. */
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** open(2) of a source file; a symbolic link or anything but a regular file is refused. */
export async function openSourceFile(path: string): Promise<FileHandle> {
  let fh;
  try {
    fh = await open(path, READ_FLAGS);
  } catch (err) {
    if (isLinkError(err)) throw new ImportSourceError(`${path} is a symbolic link: not followed`);
    throw err;
  }
  if (!(await fh.stat()).isFile()) {
    await fh.close();
    throw new ImportSourceError(`${path} is not a regular file`);
  }
  return fh;
}

/** The whole content of a source message file (openSourceFile's rules). */
export async function readSourceFile(path: string): Promise<Buffer> {
  const fh = await openSourceFile(path);
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/** Throws unless `path` is a directory itself, not a link to one; false if it does not exist. */
async function isRealDir(path: string): Promise<boolean> {
  const st = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (st === undefined) return false;
  if (st.isSymbolicLink()) throw new ImportSourceError(`${path} is a symbolic link: not followed`);
  if (!st.isDirectory()) throw new ImportSourceError(`${path} is not a directory`);
  return true;
}

/** Regular files of a folder, by name; links and other entries are left out (links logged). */
async function list(dir: string, log: SourceLogger | undefined): Promise<string[]> {
  if (!(await isRealDir(dir))) return [];
  const names: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    if (entry.isSymbolicLink()) {
      log?.warn({ event: 'import_symlink_skipped', path: join(dir, entry.name) }, 'symbolic link in the import source left out, not followed');
    } else if (entry.isFile()) names.push(entry.name);
  }
  return names;
}

/** The source's dovecot-uidlist, if it has one that is a regular file. */
async function readUidlist(root: string): Promise<ReturnType<typeof parseDovecotUidlist> | undefined> {
  try {
    return parseDovecotUidlist((await readSourceFile(join(root, 'dovecot-uidlist'))).toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Messages of `root`, oldest uid first (then arrival time, then name). `log`: where the
 * symbolic links left out are reported (once per call).
 */
export async function readMaildirSource(root: string, log?: SourceLogger): Promise<SourceMessage[]> {
  if (!(await isRealDir(root))) throw new ImportSourceError(`${root} does not exist`);
  const uidlist = await readUidlist(root);
  const out: SourceMessage[] = [];
  for (const sub of ['cur', 'new']) {
    for (const name of await list(join(root, sub), log)) {
      const path = join(root, sub, name);
      const st = await lstat(path);
      if (!st.isFile()) continue;
      const colon = name.indexOf(':');
      const base = colon < 0 ? name : name.slice(0, colon);
      const flags = colon >= 0 && name.slice(colon + 1).startsWith('2,') ? name.slice(colon + 3) : '';
      const rec = uidlist?.records.get(base);
      let uidl: string | undefined;
      let uidlSource: SourceMessage['uidlSource'];
      if (rec !== undefined && uidlist !== undefined) {
        uidl = rec.pop3Uidl ?? dovecotDefaultUidl(rec.uid, uidlist.uidValidity);
        uidlSource = 'dovecot-uidlist';
      } else {
        uidl = headerValue(await readHead(path), 'X-UIDL');
        uidlSource = uidl === undefined ? undefined : 'x-uidl';
      }
      out.push({ path, seen: flags.includes('S'), received: st.mtimeMs, uidl, uidlSource, uid: rec?.uid });
    }
  }
  const inf = Number.POSITIVE_INFINITY;
  return out.sort((a, b) => (a.uid ?? inf) - (b.uid ?? inf) || a.received - b.received || (a.path < b.path ? -1 : 1));
}

/** The first IMPORT_HEADER_READ octets of a file: enough for its header block. */
async function readHead(path: string): Promise<Buffer> {
  const fh = await openSourceFile(path);
  try {
    const buf = Buffer.alloc(IMPORT_HEADER_READ);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

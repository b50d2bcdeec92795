/**
 * The system calls on `poplar-uidlist` (maildir-uidlist.ts): never through a symbolic link
 * (lstat, O_NOFOLLOW; maildir-links.ts), a missing file read as undefined.
 */
import { constants, lstatSync } from 'node:fs';
import { lstat, type FileHandle } from 'node:fs/promises';
import { errCode } from './maildir-errors.js';
import { linkRefused, openNoFollow } from './maildir-links.js';

/** lstat(2) of the uidlist, undefined if it does not exist; a symbolic link is refused. */
export async function lstatUidlist(path: string): Promise<{ ino: number; size: number; ctimeMs: number } | undefined> {
  try {
    const st = await lstat(path);
    if (st.isSymbolicLink()) throw linkRefused(path);
    return st;
  } catch (err) {
    if (errCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** lstatUidlist with lstat(2) on the server thread (refresh's `onLoop`). */
export function lstatUidlistSync(path: string): { ino: number; size: number; ctimeMs: number } | undefined {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (st?.isSymbolicLink() === true) throw linkRefused(path);
  return st;
}

/** The file opened for writing, or undefined if it does not exist yet. */
export async function openForAppend(path: string): Promise<FileHandle | undefined> {
  try {
    return await openNoFollow(path, constants.O_RDWR);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** Up to `length` octets at `position`: fewer at the end of the file. */
export async function readRange(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buf.subarray(0, done);
}

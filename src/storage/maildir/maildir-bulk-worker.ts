/**
 * The worker side of maildir-bulk.ts: file-system work on many files of one maildir, done with
 * synchronous calls on this thread so that 50,000 files cost 50,000 × a few system calls and no
 * event-loop round trips, and the main thread stays free for other sessions. One buffer, reused
 * for every file, and the file's size from fstat to stop reading without a final empty read.
 *
 * It runs on the shared pool (workers/pool.ts). Jobs, each answered with one size per file:
 *   { op: 'move', root, names }    sizes new/<name> unless its name has `,W=`, then renames it to
 *                                  cur/<curName(name)>: the size (NaN if not measured, -1 if the
 *                                  file was gone)
 *   { op: 'size', root, rels }     R-S4 CRLF size of each root/<rel>, -1 if it is gone
 * A failed job's error carries its `code` back (entry.ts).
 */
import { closeSync, constants, fstatSync, openSync, readSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { CrlfSizer } from '../../protocol/crlf.js';
import { workerEntry } from '../../workers/entry.js';
import { curName, sizeFromName } from './maildir-filename.js';
import { SIZING_READ_CHUNK } from '../../protocol/limits.js';
import { isLinkError } from './maildir-links.js';

export type BulkJob = { op: 'move'; root: string; names: string[] } | { op: 'size'; root: string; rels: string[] };

const buffer = Buffer.allocUnsafe(SIZING_READ_CHUNK);

/** The CRLF size of one file (R-S4, the one CrlfSizer), or -1 if it does not exist or is a symbolic link. */
export function crlfSizeSync(path: string, buf: Buffer = buffer): number {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO dropped into new/ must not hold this thread in open(2).
    // O_NOFOLLOW: a file swapped for a symbolic link since the listing is left out (maildir-links.ts).
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || isLinkError(err)) return -1;
    throw err;
  }
  try {
    const sizer = new CrlfSizer();
    const st = fstatSync(fd);
    if (!st.isFile()) return -1; // a FIFO or device is no message: left out, like a vanished file
    let left = st.size;
    for (;;) {
      // A file in new/ or cur/ is complete (Maildir): its fstat size ends the reading.
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      sizer.push(n === buf.length ? buf : buf.subarray(0, n));
      left -= n;
      if (left <= 0) break;
    }
    return sizer.total();
  } finally {
    closeSync(fd);
  }
}

/**
 * Sizes new/<name> if its name carries no `,W=` (the file is read now, while it is in the page
 * cache, saving a second pass), then moves it to cur/. -1 if it was gone (moved by another reader).
 */
function moveSync(root: string, name: string): number {
  const from = join(root, 'new', name);
  const size = sizeFromName(name.split(':')[0]!) === undefined ? crlfSizeSync(from) : Number.NaN;
  if (size === -1) return -1;
  try {
    renameSync(from, join(root, 'cur', curName(name)));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return -1;
  }
  return size;
}

function run(job: BulkJob): Float64Array {
  if (job.op === 'move') {
    const sizes = new Float64Array(job.names.length);
    job.names.forEach((name, i) => (sizes[i] = moveSync(job.root, name)));
    return sizes;
  }
  const sizes = new Float64Array(job.rels.length);
  job.rels.forEach((rel, i) => (sizes[i] = crlfSizeSync(join(job.root, rel))));
  return sizes;
}

export default workerEntry(run);

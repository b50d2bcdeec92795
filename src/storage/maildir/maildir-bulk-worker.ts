/**
 * The worker side of maildir-bulk.ts: file-system work on many files of one maildir, done with
 * synchronous calls on this thread so that 50,000 files cost 50,000 × a few system calls and no
 * event-loop round trips, and the main thread stays free for other sessions. One buffer, reused
 * for every file, and the file's size from fstat to stop reading without a final empty read.
 *
 * Jobs (one message each; the reply carries the same id):
 *   { id, op: 'rename', root, names }  new/<name> -> cur/<curName(name)>, ENOENT skipped
 *   { id, op: 'size', root, rels }     R-S4 CRLF size of each root/<rel>, -1 if it is gone
 * A reply is { id, result } or { id, error: { message, code } }.
 */
import { closeSync, fstatSync, openSync, readSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort } from 'node:worker_threads';
import { CrlfSizer } from '../../protocol/crlf.js';
import { curName } from './maildir-filename.js';

export type BulkJob =
  | { id: number; op: 'rename'; root: string; names: string[] }
  | { id: number; op: 'size'; root: string; rels: string[] };

const buffer = Buffer.allocUnsafe(64 * 1024);

/** The CRLF size of one file (R-S4, the one CrlfSizer), or -1 if it does not exist. */
export function crlfSizeSync(path: string, buf: Buffer = buffer): number {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return -1;
    throw err;
  }
  try {
    const sizer = new CrlfSizer();
    let left = fstatSync(fd).size;
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

function run(job: BulkJob): unknown {
  if (job.op === 'rename') {
    for (const name of job.names) {
      try {
        renameSync(join(job.root, 'new', name), join(job.root, 'cur', curName(name)));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return null;
  }
  const sizes = new Float64Array(job.rels.length);
  job.rels.forEach((rel, i) => (sizes[i] = crlfSizeSync(join(job.root, rel))));
  return sizes;
}

parentPort?.on('message', (job: BulkJob) => {
  try {
    parentPort!.postMessage({ id: job.id, result: run(job) });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    parentPort!.postMessage({ id: job.id, error: { message: String(e?.message ?? err), code: e?.code } });
  }
});

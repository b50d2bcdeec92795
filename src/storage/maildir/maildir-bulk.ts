/**
 * Bulk file-system work of a first sight (moving new/ to cur/, sizing files never seen, R-S4):
 * a maildrop Postfix filled with 50,000 files must not cost 50,000 serial threadpool round trips
 * and ReadStreams. A small batch (the usual: a few deliveries since the last login) is done here
 * with bounded concurrency and one reused buffer per lane; a large one is handed to worker
 * threads (maildir-bulk-worker.ts, on the shared pool workers/pool.ts) that use synchronous calls,
 * so the event loop stays free for the other sessions (their NOOPs do not wait behind a first
 * sight). The workers never keep the process alive, and one idle for WORKER_IDLE_MS ends (none is
 * kept; a dead one is started again by the next large batch): each holds its own V8 heap,
 * which a big first sight fills. Starting them costs more than a small batch on the event loop,
 * so while none runs a batch goes to them only from COLD_BULK_MIN files (the figures behind both
 * thresholds are in docs/benchmarks.md, "Figures behind code comments").
 */
import { availableParallelism } from 'node:os';
import { open, rename } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { CrlfSizer } from '../../protocol/crlf.js';
import { SIZING_READ_CHUNK } from '../../protocol/limits.js';
import { WorkerPool } from '../../workers/pool.js';
import { errCode } from './maildir-errors.js';
import { curName, parseName, sizeFromName } from './maildir-filename.js';
import type { BulkJob } from './maildir-bulk-worker.js';
import { isLinkError, NOFOLLOW } from './maildir-links.js';

/** At or above this many files a batch goes to the worker pool while its workers run… */
export const BULK_MIN = 64;
/** …and at or above this many when they must be started first (see above). */
export const COLD_BULK_MIN = 512;
/** Files in flight at once for a small batch done on the event loop. */
const LANES = 8;
const POOL_SIZE = Math.max(1, Math.min(2, availableParallelism()));
/** A worker with no job for this long ends (see above). */
export const WORKER_IDLE_MS = 30_000;

/**
 * Moves new/<name> to cur/ for each name (appending `:2,`); a file moved by another program is
 * skipped. A file whose name has no `,W=` size is sized (R-S4) on the way, before the move, as
 * it is read anyway at first sight: returns base name -> CRLF size of those moved and measured.
 */
export async function moveNewToCur(root: string, names: readonly string[]): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  const onWorkers = toWorkers(names.length);
  const parts = onWorkers ? split(names) : [names.slice()];
  const results = await Promise.all(parts.map((part) => run({ op: 'move', root, names: part }, onWorkers)));
  parts.forEach((part, p) =>
    part.forEach((name, i) => {
      const size = results[p]![i]!;
      if (size >= 0) sizes.set(parseName(name).base, size); // NaN (not measured) fails the test too
    }),
  );
  return sizes;
}

/** R-S4: the CRLF size of each root/<rel>, undefined for a file that is gone. */
export async function crlfSizes(root: string, rels: readonly string[]): Promise<(number | undefined)[]> {
  const onWorkers = toWorkers(rels.length);
  const parts = onWorkers ? split(rels) : [rels.slice()];
  const results = await Promise.all(parts.map((part) => run({ op: 'size', root, rels: part }, onWorkers)));
  return results.flatMap((sizes) => Array.from(sizes, (s) => (s < 0 ? undefined : s)));
}

/** R-S4: the CRLF size of one file, read into `buf`; undefined if it is gone or a symbolic link. */
export async function crlfSizeOf(path: string, buf: Buffer = Buffer.allocUnsafe(SIZING_READ_CHUNK)): Promise<number | undefined> {
  let fh;
  try {
    // O_NONBLOCK: a FIFO dropped into the Maildir must not hold a pool thread in open(2).
    // O_NOFOLLOW: a file swapped for a symbolic link since the listing is left out (maildir-links.ts).
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | NOFOLLOW);
  } catch (err) {
    if (errCode(err) === 'ENOENT' || isLinkError(err)) return undefined;
    throw err;
  }
  try {
    const sizer = new CrlfSizer();
    const st = await fh.stat();
    if (!st.isFile()) return undefined; // a FIFO or device is no message: left out, like a vanished file
    let left = st.size;
    while (left > 0) {
      // A file in new/ or cur/ is complete (Maildir): its fstat size ends the reading.
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      sizer.push(buf.subarray(0, bytesRead));
      left -= bytesRead;
    }
    return sizer.total();
  } finally {
    await fh.close();
  }
}

/** Whether a batch of `n` files goes to the worker pool (see above): it is split over
 * POOL_SIZE workers, so the low threshold applies only when all of them have loaded. */
function toWorkers(n: number): boolean {
  return !pool.fallback && n >= (pool.loaded >= POOL_SIZE ? BULK_MIN : COLD_BULK_MIN);
}

/** A job on the pool (waiting for its workers to start), or here on the event loop. */
function run(job: BulkJob, onWorkers: boolean): Promise<Float64Array> {
  return onWorkers ? pool.run(job, { wait: true }) : inThread(job);
}

/** The worker's answer to `job` (maildir-bulk-worker.ts), computed here with LANES files in flight. */
async function inThread(job: BulkJob): Promise<Float64Array> {
  const items = job.op === 'move' ? job.names : job.rels;
  const out = new Float64Array(items.length);
  const buffers: Buffer[] = [];
  await lanes(items, async (item, i, lane) => {
    const buf = (buffers[lane] ??= Buffer.allocUnsafe(SIZING_READ_CHUNK));
    if (job.op === 'size') {
      out[i] = (await crlfSizeOf(join(job.root, item), buf)) ?? -1;
      return;
    }
    const from = join(job.root, 'new', item);
    const size = sizeFromName(parseName(item).base) === undefined ? await crlfSizeOf(from, buf) : Number.NaN;
    out[i] = -1;
    if (size === undefined) return;
    try {
      await rename(from, join(job.root, 'cur', curName(item)));
    } catch (err) {
      if (errCode(err) !== 'ENOENT') throw err;
      return;
    }
    out[i] = size;
  });
  return out;
}

async function lanes<T>(items: readonly T[], fn: (item: T, index: number, lane: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (l: number): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i, l);
    }
  };
  await Promise.all(Array.from({ length: Math.min(LANES, items.length) }, (_, l) => lane(l)));
}

/** `items` in POOL_SIZE contiguous parts (results are concatenated back in order). */
function split<T>(items: readonly T[]): T[][] {
  const per = Math.ceil(items.length / POOL_SIZE);
  const parts: T[][] = [];
  for (let i = 0; i < items.length; i += per) parts.push(items.slice(i, i + per));
  return parts;
}

const pool = new WorkerPool<BulkJob, Float64Array>({
  name: 'maildir',
  worker: new URL('./maildir-bulk-worker.js', import.meta.url),
  size: POOL_SIZE,
  idleMs: WORKER_IDLE_MS,
  inThread,
});

/** For the tests: the worker threads running now and loaded so far, and how long an idle one lives (settable). */
export const bulkPool = {
  get workers(): number {
    return pool.threads.length;
  },
  get started(): number {
    return pool.loadedTotal;
  },
  set idleMs(ms: number) {
    pool.setIdleMs(ms);
  },
};

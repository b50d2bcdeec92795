/**
 * Bulk file-system work of a first sight (moving new/ to cur/, sizing files never seen, R-S4):
 * a maildrop Postfix filled with 50,000 files must not cost 50,000 serial threadpool round trips
 * and ReadStreams. A small batch (the usual: a few deliveries since the last login) is done here
 * with bounded concurrency and one reused buffer per lane; a large one is handed to a persistent
 * pool of worker threads (maildir-bulk-worker.ts) that use synchronous calls, so the event loop
 * stays free for the other sessions (their NOOPs do not wait behind a first sight). The workers
 * never keep the process alive, and one idle for WORKER_IDLE_MS ends: each holds its own V8 heap,
 * which a big first sight fills (after one of 1,000,000 files the process's PSS was 1,217 MiB
 * with them, 649 MiB once they ended). Starting them costs ~55 ms, so while none runs a batch
 * goes to them only from COLD_BULK_MIN files (measured: 64 files took 22 ms on the event loop,
 * 63 ms on workers started for them, 7 ms on running ones; 1,024 files 142 ms on the event loop,
 * 33–59 ms on running workers).
 */
import { availableParallelism } from 'node:os';
import { open, rename } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { CrlfSizer } from '../../protocol/crlf.js';
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
  const record = (name: string, size: number): void => {
    if (size >= 0) sizes.set(parseName(name).base, size); // NaN (not measured) fails the test too
  };
  if (toWorkers(names.length)) {
    const parts = split(names);
    const results = await Promise.all(parts.map((part) => pool.run({ op: 'move', root, names: part }) as Promise<Float64Array>));
    parts.forEach((part, p) => part.forEach((name, i) => record(name, results[p]![i]!)));
    return sizes;
  }
  const buffers: Buffer[] = [];
  await lanes(names, async (name, _i, lane) => {
    const from = join(root, 'new', name);
    const buf = (buffers[lane] ??= Buffer.allocUnsafe(64 * 1024));
    const size = sizeFromName(parseName(name).base) === undefined ? await crlfSizeOf(from, buf) : Number.NaN;
    if (size === undefined) return;
    try {
      await rename(from, join(root, 'cur', curName(name)));
    } catch (err) {
      if (errCode(err) !== 'ENOENT') throw err;
      return;
    }
    record(name, size);
  });
  return sizes;
}

/** R-S4: the CRLF size of each root/<rel>, undefined for a file that is gone. */
export async function crlfSizes(root: string, rels: readonly string[]): Promise<(number | undefined)[]> {
  if (toWorkers(rels.length)) {
    const parts = await Promise.all(split(rels).map((part) => pool.run({ op: 'size', root, rels: part }) as Promise<Float64Array>));
    return parts.flatMap((sizes) => Array.from(sizes, (s) => (s < 0 ? undefined : s)));
  }
  const out: (number | undefined)[] = new Array(rels.length);
  const buffers: Buffer[] = [];
  await lanes(rels, async (rel, i, lane) => {
    const buf = (buffers[lane] ??= Buffer.allocUnsafe(64 * 1024));
    out[i] = await crlfSizeOf(join(root, rel), buf);
  });
  return out;
}

/** R-S4: the CRLF size of one file, read into `buf`; undefined if it is gone or a symbolic link. */
export async function crlfSizeOf(path: string, buf: Buffer = Buffer.allocUnsafe(64 * 1024)): Promise<number | undefined> {
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
 * POOL_SIZE workers, so the low threshold applies only when all of them run. */
function toWorkers(n: number): boolean {
  return n >= (pool.size >= POOL_SIZE ? BULK_MIN : COLD_BULK_MIN);
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

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };
type JobBody = BulkJob extends infer J ? (J extends { id: number } ? Omit<J, 'id'> : never) : never;
interface Slot {
  readonly worker: Worker;
  readonly pending: Map<number, Pending>;
  /** Ends the worker once it has been idle `idleMs`; unset while it has jobs. */
  idle: NodeJS.Timeout | undefined;
}

/** Workers taking jobs in turn; referenced only while they have work, ended when idle (above). */
class Pool {
  private readonly workers: Slot[] = [];
  private nextId = 1;
  private turn = 0;
  private idleMs = WORKER_IDLE_MS;
  /** Workers started since the process started, and those whose thread has not exited (for the tests). */
  started = 0;
  alive = 0;

  /** Workers in the pool now. */
  get size(): number {
    return this.workers.length;
  }

  /** Changes how long an idle worker lives, for those idle now too (the tests shorten it). */
  setIdleMs(ms: number): void {
    this.idleMs = ms;
    for (const slot of this.workers) if (slot.pending.size === 0) this.armIdle(slot);
  }

  run(job: JobBody): Promise<unknown> {
    const slot = this.slot();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (slot.pending.size === 0) {
        this.disarm(slot);
        slot.worker.ref();
      }
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ ...job, id });
    });
  }

  /** Takes the slot out of the pool: a job from now on goes to another worker. */
  private remove(slot: Slot): void {
    this.disarm(slot);
    const i = this.workers.indexOf(slot);
    if (i >= 0) this.workers.splice(i, 1);
  }

  private disarm(slot: Slot): void {
    clearTimeout(slot.idle);
    slot.idle = undefined;
  }

  /** (Re)starts the idle timer of a slot without jobs. */
  private armIdle(slot: Slot): void {
    clearTimeout(slot.idle);
    slot.idle = setTimeout(() => {
      this.remove(slot);
      void slot.worker.terminate();
    }, this.idleMs).unref();
  }

  private slot(): Slot {
    if (this.workers.length < POOL_SIZE) {
      const worker = new Worker(new URL('./maildir-bulk-worker.js', import.meta.url));
      this.started++;
      this.alive++;
      const slot: Slot = { worker, pending: new Map<number, Pending>(), idle: undefined };
      worker.unref();
      const fail = (err: Error): void => {
        this.remove(slot);
        for (const p of slot.pending.values()) p.reject(err);
        slot.pending.clear();
      };
      worker.on('message', (msg: { id: number; result?: unknown; error?: { message: string; code?: string } }) => {
        const p = slot.pending.get(msg.id);
        if (p === undefined) return;
        slot.pending.delete(msg.id);
        if (slot.pending.size === 0) {
          worker.unref();
          this.armIdle(slot);
        }
        if (msg.error === undefined) p.resolve(msg.result);
        else p.reject(Object.assign(new Error(msg.error.message), { code: msg.error.code }));
      });
      worker.on('error', fail);
      worker.on('exit', (code) => {
        this.alive--;
        fail(new Error(`maildir worker exited (${code})`));
      });
      this.workers.push(slot);
      return slot;
    }
    return this.workers[this.turn++ % this.workers.length]!;
  }
}

const pool = new Pool();

/** For the tests: the worker threads running now and started so far, and how long an idle one lives (settable). */
export const bulkPool = {
  get workers(): number {
    return pool.alive;
  },
  get started(): number {
    return pool.started;
  },
  set idleMs(ms: number) {
    pool.setIdleMs(ms);
  },
};

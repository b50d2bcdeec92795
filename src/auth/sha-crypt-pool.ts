/**
 * SHA-crypt off the event loop. A 5,000-round `{SHA512-CRYPT}` costs milliseconds of CPU (sha-crypt.ts);
 * on the main thread it blocked every other session meanwhile and held uncached logins to one
 * core (docs/benchmarks.md). Every SHA-crypt of the server path — a stored hash's check
 * (schemes.ts) and the failed login's dummy (password.ts verifyDummy) — goes through one small
 * pool of worker threads (sha-crypt-worker.ts), the same pool for both so the dummy costs what a
 * real check costs (R-S13).
 *
 * The pool is the shared WorkerPool (workers/pool.ts: its start, idle, crash and fallback policy),
 * with every thread kept for the life of the process once started (unlike maildir-bulk.ts's, which
 * end when idle: logins are steady, a hash's heap stays small). Starting a thread (its modules and
 * WASM) costs more than a hash, and a login waiting for it would answer that much later than the
 * next ones (R-S13, R-X9's growing delay): so until a thread has loaded, and where none can, a
 * hash runs in-thread with the same function. The process's pool starts its first thread with its
 * first job (that job, and any before the thread has loaded, run in-thread): a process that never
 * hashes SHA-crypt (every user scrypt, no failed login yet, the primary of a multi-process server)
 * never pays a thread's start, and every `poplar serve` process listens without waiting for one.
 * The second thread starts when two hashes are wanted at once. Both dummies of a failed login run
 * for a known and an unknown user alike (authenticator.ts), so the first failure starts the thread
 * whichever user it names (R-S13).
 * A thread that dies mid-hash rejects that login's check (it fails with an error, never hangs).
 * The queue is not bounded here: a job is one login's check and at most two run per login (the
 * user's own scheme beside the dummy, authenticator.ts), and logins in flight are bounded by the
 * connection cap (`pop3.max_connections`; unbounded only if that is 0), so pending jobs are too
 * (a job is its password bytes and salt). Refusing one would fail a valid user's login under
 * load instead of queueing it.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { WorkerPool } from '../workers/pool.js';
import { shaCrypt, type ShaCryptAlg } from './sha-crypt.js';
import type { ShaCryptJob } from './sha-crypt-worker.js';

/** Two threads on the 2-core machines measured; more gains nothing there (bench/auth-loop.ts). */
const POOL_SIZE = Math.max(1, Math.min(2, availableParallelism()));

export interface ShaCryptPoolOptions {
  /** Worker threads at most; default min(2, available parallelism). */
  readonly size?: number;
  /** The worker's module; tests point it elsewhere to see the in-thread fallback. */
  readonly workerUrl?: URL;
  /** Threads warm() starts and ready() waits for (the rest start when jobs queue); default `size`. */
  readonly keep?: number;
}

export class ShaCryptPool {
  private readonly pool: WorkerPool<ShaCryptJob, string>;

  constructor(opts: ShaCryptPoolOptions = {}) {
    const size = Math.max(1, opts.size ?? POOL_SIZE);
    this.pool = new WorkerPool<ShaCryptJob, string>({
      name: 'SHA-crypt',
      worker: opts.workerUrl ?? new URL('./sha-crypt-worker.js', import.meta.url),
      size,
      keep: Math.max(1, opts.keep ?? size), // WorkerPool keeps at most `size`
      inThread: (job) => shaCrypt(job.alg, job.password, job.salt, job.rounds),
    });
  }

  /** shaCrypt(alg, password, salt, rounds), computed on a worker thread when one has loaded. */
  run(alg: ShaCryptAlg, password: Uint8Array, salt: string, rounds?: number): Promise<string> {
    // A copy of just these bytes: a small Buffer is a view of a shared slab, which would be cloned whole.
    return this.pool.run({ alg, password: new Uint8Array(password), salt, rounds });
  }

  /** Jobs run so far on a worker and in-thread (tests check which path ran). */
  get counts(): { readonly inWorker: number; readonly inThread: number } {
    return this.pool.counts;
  }

  /** Starts every worker and resolves once each has loaded or the pool found it cannot start. */
  ready(): Promise<void> {
    return this.pool.ready();
  }

  /** Starts every worker now (in the background; unreferenced until they get work). */
  warm(): void {
    this.pool.warm();
  }

  /** Whether hashes now run in-thread because a worker could not start. */
  get fallback(): boolean {
    return this.pool.fallback;
  }

  /** The running workers (tests kill one mid-job). */
  get threads(): readonly Worker[] {
    return this.pool.threads;
  }
}

const pool = new ShaCryptPool({ keep: 1 });

/** Starts the process's first SHA-crypt thread now, ahead of any job (bench/auth-login.ts measures warm). */
export function warmShaCryptPool(): void {
  pool.warm();
}

/** The process pool's threads and jobs so far (tests: no thread before the first job). */
export function shaCryptPoolState(): { readonly threads: number; readonly inWorker: number; readonly inThread: number } {
  return { threads: pool.threads.length, ...pool.counts };
}

/** The server path's SHA-crypt: shaCrypt's result, computed off the event loop (the process's pool). */
export function shaCryptPooled(alg: ShaCryptAlg, password: Uint8Array, salt: string, rounds?: number): Promise<string> {
  return pool.run(alg, password, salt, rounds);
}

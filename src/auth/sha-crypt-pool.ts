/**
 * SHA-crypt off the event loop. A 5,000-round `{SHA512-CRYPT}` costs ~3.5 ms of CPU (sha-crypt.ts);
 * on the main thread it blocked every other session meanwhile and held uncached logins to one
 * core (docs/benchmarks.md). Every SHA-crypt of the server path — a stored hash's check
 * (schemes.ts) and the failed login's dummy (password.ts verifyDummy) — goes through one small
 * persistent pool of worker threads (sha-crypt-worker.ts), the same pool for both so the dummy
 * costs what a real check costs (R-S13).
 *
 * The workers are started on first need (one more whenever every running one is busy, up to
 * POOL_SIZE), kept for the life of the process (unlike maildir-bulk.ts's, which end when idle:
 * logins are steady, a hash's heap stays small) and referenced only while they have work, so they
 * never keep it alive. A job goes to the worker with the fewest pending.
 * Starting a worker (its thread, modules and WASM) takes ~60 ms more than a hash, and a login
 * waiting for it would answer that much later than the next ones (R-S13, R-X9's growing delay).
 * So no job waits for a thread start: jobs go only to workers that have loaded, and while none
 * has, they run in-thread as before. The server warms the pool when it makes its Authenticator
 * (warmShaCryptPool), and a worker that dies is replaced at once.
 * - A worker that dies after it started (a crash, a terminate) rejects the jobs it held — the
 *   login fails with an error, it never hangs — and is replaced by the next job's worker.
 * - Where a worker cannot start at all (no worker file beside this one, threads refused), the
 *   jobs it held and all later ones run in-thread with the same function: slower for the other
 *   sessions, but the same answers and the same cost for every login (R-S13).
 * The queue is not bounded here: a job is one login's check and at most two run per login (the
 * user's own scheme beside the dummy, authenticator.ts), and logins in flight are bounded by the
 * connection cap (`pop3.max_connections`; unbounded only if that is 0), so pending jobs are too
 * (a job is its password bytes and salt). Refusing one would fail a valid user's login under
 * load instead of queueing it.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { shaCrypt, type ShaCryptAlg } from './sha-crypt.js';
import type { ShaCryptJob } from './sha-crypt-worker.js';

/** Two threads on the 2-core machines measured; more gains nothing there (bench/auth-loop.ts). */
const POOL_SIZE = Math.max(1, Math.min(2, availableParallelism()));

type Body = Omit<ShaCryptJob, 'id'>;
interface Pending {
  body: Body;
  resolve: (v: string) => void;
  reject: (e: Error) => void;
}
interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  /** Set by the worker's first message, once its modules loaded: a death before is "cannot start". */
  started: boolean;
  /** Settles when the worker has loaded or died. */
  loaded: Promise<void>;
  settle: () => void;
}

export interface ShaCryptPoolOptions {
  /** Worker threads at most; default min(2, available parallelism). */
  readonly size?: number;
  /** The worker's module; tests point it elsewhere to see the in-thread fallback. */
  readonly workerUrl?: URL;
}

export class ShaCryptPool {
  private readonly slots: Slot[] = [];
  private readonly size: number;
  private readonly workerUrl: URL;
  private nextId = 1;
  /** True once a worker could not start: everything runs in-thread from then on. */
  private inThread = false;

  constructor(opts: ShaCryptPoolOptions = {}) {
    this.size = Math.max(1, opts.size ?? POOL_SIZE);
    this.workerUrl = opts.workerUrl ?? new URL('./sha-crypt-worker.js', import.meta.url);
  }

  /** shaCrypt(alg, password, salt, rounds), computed on a worker thread when one can run. */
  run(alg: ShaCryptAlg, password: Uint8Array, salt: string, rounds?: number): Promise<string> {
    // A copy of just these bytes: a small Buffer is a view of a shared slab, which would be cloned whole.
    const body: Body = { alg, password: new Uint8Array(password), salt, rounds };
    const slot = this.inThread ? undefined : this.slot();
    if (slot === undefined) {
      this.counts.inThread++;
      return shaCrypt(alg, body.password, salt, rounds);
    }
    this.counts.inWorker++;
    const id = this.nextId++;
    return new Promise<string>((resolve, reject) => {
      if (slot.pending.size === 0) slot.worker.ref();
      slot.pending.set(id, { body, resolve, reject });
      slot.worker.postMessage({ ...body, id } satisfies ShaCryptJob);
    });
  }

  /** Jobs run so far on a worker and in-thread (tests check which path ran). */
  readonly counts = { inWorker: 0, inThread: 0 };

  /** Starts every worker and resolves once each has loaded or failed to. */
  async ready(): Promise<void> {
    this.warm();
    await Promise.all(this.slots.map((s) => s.loaded));
  }

  /** Starts every worker now (in the background; they stay unreferenced until they get work). */
  warm(): void {
    while (!this.inThread && this.slots.length < this.size && this.start() !== undefined);
  }

  /** Whether hashes now run in-thread because a worker could not start. */
  get fallback(): boolean {
    return this.inThread;
  }

  /** The running workers (tests kill one mid-job). */
  get threads(): readonly Worker[] {
    return this.slots.map((s) => s.worker);
  }

  /**
   * The least busy loaded worker; one more is started (for later jobs) when none is idle and the
   * pool is under size. Undefined while no worker has loaded: the job runs in-thread.
   */
  private slot(): Slot | undefined {
    let best: Slot | undefined;
    for (const s of this.slots) if (s.started && (best === undefined || s.pending.size < best.pending.size)) best = s;
    if ((best === undefined || best.pending.size > 0) && this.slots.length < this.size) this.start();
    return best;
  }

  private start(): Slot | undefined {
    let worker: Worker;
    try {
      worker = new Worker(this.workerUrl);
    } catch {
      this.inThread = true;
      return undefined;
    }
    let settle = (): void => undefined;
    const loaded = new Promise<void>((resolve) => (settle = resolve));
    const slot: Slot = { worker, pending: new Map(), started: false, loaded, settle };
    worker.unref();
    let gone = false;
    const fail = (err: Error): void => {
      if (gone) return;
      gone = true;
      slot.settle();
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      const pending = [...slot.pending.values()];
      slot.pending.clear();
      if (!slot.started) {
        // It never loaded: this environment cannot run the worker (it was given no job; any run here).
        this.inThread = true;
        for (const p of pending) shaCrypt(p.body.alg, p.body.password, p.body.salt, p.body.rounds).then(p.resolve, p.reject);
        return;
      }
      for (const p of pending) p.reject(err);
      // Replaced now, so the next login does not pay for a thread start. A worker that cannot load
      // ends as "cannot start" above, so this never loops.
      this.start();
    };
    worker.on('message', (msg: { id?: number; result?: string; error?: { message: string } }) => {
      slot.started = true;
      if (msg.id === undefined) {
        slot.settle();
        // The worker's "loaded" message. An unref() before the thread came up does not hold
        // (a warmed worker kept the process alive): unreferenced again now if it has no work.
        if (slot.pending.size === 0) worker.unref();
        return;
      }
      const p = slot.pending.get(msg.id);
      if (p === undefined) return;
      slot.pending.delete(msg.id);
      if (slot.pending.size === 0) worker.unref();
      if (msg.error === undefined && msg.result !== undefined) p.resolve(msg.result);
      else p.reject(new Error(`SHA-crypt worker: ${msg.error?.message ?? 'no result'}`));
    });
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`SHA-crypt worker exited (${code})`)));
    this.slots.push(slot);
    return slot;
  }
}

const pool = new ShaCryptPool();

/** Starts the process's SHA-crypt workers ahead of the first login (unreferenced: costs no exit). */
export function warmShaCryptPool(): void {
  pool.warm();
}

/**
 * Resolves once the process's SHA-crypt workers have loaded (or failed to, leaving the in-thread
 * fallback): the server listens only then, so its first logins do not pay for starting threads
 * and answer like every later one (R-S13).
 */
export function shaCryptPoolReady(): Promise<void> {
  return pool.ready();
}

/** The server path's SHA-crypt: shaCrypt's result, computed off the event loop (the process's pool). */
export function shaCryptPooled(alg: ShaCryptAlg, password: Uint8Array, salt: string, rounds?: number): Promise<string> {
  return pool.run(alg, password, salt, rounds);
}

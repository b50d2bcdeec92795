/**
 * The server's one worker-thread pool policy, on piscina: every pool of worker threads in poplar
 * (SHA-crypt hashing, auth/sha-crypt-pool.ts; the Maildir first sight, storage/maildir/maildir-bulk.ts)
 * is a WorkerPool, so they start, idle, crash and fall back the same way. piscina queues the jobs,
 * spreads them over the threads (one job per thread at a time), ends idle threads and replaces the
 * ones it keeps; this module adds what poplar needs on top:
 *
 * - Start. A thread takes jobs only once its module has loaded (entry.ts announces it; a custom
 *   piscina balancer skips threads that have not). `warm()` starts the `keep` threads ahead of
 *   need; more, up to `size`, start when jobs queue. A job never waits for a thread start unless
 *   its caller asks to (`run(job, { wait: true })`, for a batch worth the wait): until a thread has
 *   loaded it runs in-thread, with the caller's `inThread` function and the same answer.
 * - Idle. Threads beyond `keep` end after `idleMs` without a job. Threads are unreferenced while
 *   they have no job (piscina), so an idle pool never keeps the process alive.
 * - Crash. A thread that dies after it loaded rejects the job it was running ("<name> worker: …"),
 *   never hangs it; jobs queued behind it run on another thread. A kept thread is replaced at once.
 * - Cannot start. If a thread dies before its module loaded (no worker file, threads refused), the
 *   pool stops for good and every job, queued or later, runs in-thread: slower for the other
 *   sessions, but the same answers.
 *
 * The queue is not bounded here: each user bounds its jobs (sha-crypt-pool.ts, maildir-bulk.ts).
 */
import type { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { LOADED, type Reply } from './entry.js';

export interface WorkerPoolOptions<J, R> {
  /** Names the pool in errors ("SHA-crypt worker: …"). */
  readonly name: string;
  /** The worker module: its default export is `workerEntry(fn)` (entry.ts). */
  readonly worker: URL;
  /** Threads at most. */
  readonly size: number;
  /** Threads started by warm() and replaced at once when one dies; default 0. */
  readonly keep?: number;
  /** A thread beyond `keep` with no job for this long ends; default: never. */
  readonly idleMs?: number;
  /** The job on this thread, with the worker's answer: before a thread has loaded, and if none can. */
  readonly inThread: (job: J) => Promise<R>;
}

type Balancer = NonNullable<NonNullable<ConstructorParameters<typeof Piscina>[0]>['loadBalancer']>;

export class WorkerPool<J, R> {
  private piscina: Piscina | undefined;
  /** The current piscina's threads whose module has loaded, by thread id. */
  private readonly loadedIds = new Map<number, Worker>();
  private cannotStart = false;
  private idleMs: number;
  private waiters: (() => void)[] = [];
  /** Jobs run so far on a thread and in-thread (tests check which path ran). */
  readonly counts = { inWorker: 0, inThread: 0 };
  /** Threads that have loaded since the pool was made (tests count starts). */
  loadedTotal = 0;

  constructor(private readonly opts: WorkerPoolOptions<J, R>) {
    this.idleMs = opts.idleMs ?? Infinity;
  }

  /** Threads that have loaded and take jobs. */
  get loaded(): number {
    return this.loadedIds.size;
  }

  /** Whether a thread could not start: every job runs in-thread from then on. */
  get fallback(): boolean {
    return this.cannotStart;
  }

  /** The threads now (started or loaded; tests kill one mid-job). */
  get threads(): readonly Worker[] {
    return this.piscina?.threads ?? [];
  }

  /** Starts the kept threads now, in the background. */
  warm(): void {
    this.instance();
  }

  /** Starts the kept threads and resolves once each has loaded, or the pool found it cannot start. */
  async ready(): Promise<void> {
    this.warm();
    while (!this.cannotStart && this.loadedIds.size < Math.min(this.opts.keep ?? 0, this.opts.size)) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /**
   * The job's answer, from a loaded thread when there is one, else in-thread. With `wait`, a job
   * that finds no loaded thread waits for one to start (the caller judged the job worth it).
   */
  async run(job: J, opts: { wait?: boolean } = {}): Promise<R> {
    const piscina = this.instance();
    if (piscina !== undefined && this.loadedIds.size === 0 && opts.wait === true && (this.opts.keep ?? 0) > 0) {
      // Kept threads were started by warm(): wait for one instead of queueing beside them.
      await this.ready();
    }
    if (piscina === undefined || this.cannotStart || (this.loadedIds.size === 0 && opts.wait !== true)) {
      this.counts.inThread++;
      return this.opts.inThread(job);
    }
    this.counts.inWorker++;
    let reply: Reply<R>;
    try {
      reply = (await piscina.run(job)) as Reply<R>;
    } catch (err) {
      // Queued when the pool found it cannot start: the job runs here instead.
      if (this.cannotStart) {
        this.counts.inWorker--;
        this.counts.inThread++;
        return this.opts.inThread(job);
      }
      throw new Error(`${this.opts.name} worker: ${(err as Error)?.message ?? String(err)}`);
    }
    if ('ok' in reply) return reply.ok;
    throw Object.assign(new Error(reply.error.message), reply.error.code === undefined ? {} : { code: reply.error.code });
  }

  /** Changes how long a thread beyond `keep` lives idle; the idle threads now end (tests shorten it). */
  setIdleMs(ms: number): void {
    this.idleMs = ms;
    const old = this.piscina;
    this.piscina = undefined;
    this.loadedIds.clear();
    void old?.close();
  }

  private instance(): Piscina | undefined {
    if (this.piscina !== undefined || this.cannotStart) return this.piscina;
    const loaded = this.loadedIds;
    // Least busy among the loaded threads; null leaves the job queued for the next free one.
    const balancer: Balancer = (_task, workers) => {
      let best: (typeof workers)[number] | null = null;
      for (const w of workers) {
        if (w.terminating || w.destroyed || !loaded.has(w.id) || w.currentUsage > 0) continue;
        best = w;
        break;
      }
      return best;
    };
    let piscina: Piscina;
    try {
      piscina = new Piscina({
        filename: this.opts.worker.href,
        minThreads: Math.min(this.opts.keep ?? 0, this.opts.size),
        maxThreads: this.opts.size,
        idleTimeout: this.idleMs,
        concurrentTasksPerWorker: 1,
        loadBalancer: balancer,
      });
    } catch {
      this.stop();
      return undefined;
    }
    this.piscina = piscina;
    const current = (): boolean => this.piscina === piscina;
    piscina.on('message', (msg: unknown) => {
      const id = (msg as Record<string, unknown> | null)?.[LOADED];
      const worker = piscina.threads.find((w) => w.threadId === id);
      if (!current() || typeof id !== 'number' || worker === undefined) return;
      loaded.set(id, worker);
      this.loadedTotal++;
      this.wake();
    });
    // A destroyed thread's id is gone (-1 once it exited), so the threads are compared once piscina
    // has removed it: more threads ended than loaded ones lost means one ended before it loaded,
    // and this environment cannot run the worker.
    let ended = 0;
    piscina.on('workerDestroy', () => {
      if (!current()) return;
      if (ended++ === 0) {
        queueMicrotask(() => {
          if (!current()) return;
          const alive = new Set(piscina.threads);
          let lost = 0;
          for (const [id, w] of loaded) if (!alive.has(w)) lost += Number(loaded.delete(id));
          const unloaded = ended - lost;
          ended = 0;
          if (unloaded > 0) this.stop();
        });
      }
    });
    // A thread's error with no job running: it ends, which the workerDestroy above has seen.
    piscina.on('error', () => undefined);
    return piscina;
  }

  private stop(): void {
    this.cannotStart = true;
    const piscina = this.piscina;
    this.piscina = undefined;
    this.loadedIds.clear();
    // Its queued jobs reject, and run() runs them in-thread.
    void piscina?.destroy();
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/**
 * The worker side of pool.ts. A worker module prepares what its jobs need at its top level (so
 * no job pays for it), then exports `workerEntry(fn)` as its default: piscina calls that for each
 * job. Loading the module announces the thread as loaded to pool.ts, which hands jobs only to
 * loaded threads; an error thrown by `fn` travels back as its message and `code` (a structured
 * clone of an Error keeps the message only), and pool.ts rethrows it as an Error with that code.
 */
import { parentPort, threadId } from 'node:worker_threads';

/** The key of the message a loaded worker sends (its value: the thread's id). */
export const LOADED = 'poplarWorkerLoaded';

/** What a job's call returns to pool.ts. */
export type Reply<R> = { readonly ok: R } | { readonly error: { readonly message: string; readonly code?: string } };

/** The default export of a worker module: `fn` for each job, its errors returned as a Reply. */
export function workerEntry<J, R>(fn: (job: J) => R | Promise<R>): (job: J) => Promise<Reply<R>> {
  parentPort?.postMessage({ [LOADED]: threadId });
  return async (job) => {
    try {
      return { ok: await fn(job) };
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      return { error: { message: String(e?.message ?? err), code: typeof e?.code === 'string' ? e.code : undefined } };
    }
  };
}

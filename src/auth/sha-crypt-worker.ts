/**
 * The worker side of sha-crypt-pool.ts: SHA-crypt hashes computed on this thread with the same
 * in-thread function (sha-crypt.ts, one reused hash-wasm state per algorithm), so that the
 * ~3.5 ms of CPU a 5,000-round hash costs never blocks the main thread's other sessions.
 *
 * Jobs (one message each; the reply carries the same id):
 *   { id, alg, password, salt, rounds }   the full crypt string of shaCrypt(alg, password, salt, rounds)
 * A reply is { id, result } or { id, error: { message } }; the first message, { loaded: true }, says
 * the modules loaded. Jobs run one after another, in order.
 */
import { parentPort } from 'node:worker_threads';
import { shaCrypt, type ShaCryptAlg } from './sha-crypt.js';

export interface ShaCryptJob {
  id: number;
  alg: ShaCryptAlg;
  password: Uint8Array;
  salt: string;
  rounds: number | undefined;
}

// Both WASM hashers made before the first job, so no login pays for them; then "loaded": the
// pool counts a death before this message as "cannot start" and falls back in-thread.
if (parentPort !== null) {
  await shaCrypt('sha256', new Uint8Array(0), '', 1000);
  await shaCrypt('sha512', new Uint8Array(0), '', 1000);
  parentPort.postMessage({ loaded: true });
}

parentPort?.on('message', (job: ShaCryptJob) => {
  shaCrypt(job.alg, job.password, job.salt, job.rounds).then(
    (result) => parentPort!.postMessage({ id: job.id, result }),
    (err: unknown) => parentPort!.postMessage({ id: job.id, error: { message: String((err as Error)?.message ?? err) } }),
  );
});

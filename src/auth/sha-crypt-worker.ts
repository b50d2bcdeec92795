/**
 * The worker side of sha-crypt-pool.ts: SHA-crypt hashes computed on a worker thread of the
 * shared pool (workers/pool.ts) with the same in-thread function (sha-crypt.ts, one reused
 * hash-wasm state per algorithm), so the milliseconds of CPU a 5,000-round hash costs never block
 * the main thread's other sessions (figures: docs/benchmarks.md). A job is { alg, password, salt, rounds }; its answer is the
 * full crypt string of shaCrypt(alg, password, salt, rounds).
 */
import { shaCrypt, type ShaCryptAlg } from './sha-crypt.js';
import { workerEntry } from '../workers/entry.js';

export interface ShaCryptJob {
  alg: ShaCryptAlg;
  password: Uint8Array;
  salt: string;
  rounds: number | undefined;
}

// Both WASM hashers made before the thread announces itself loaded, so no login pays for them.
await shaCrypt('sha256', new Uint8Array(0), '', 1000);
await shaCrypt('sha512', new Uint8Array(0), '', 1000);

export default workerEntry((job: ShaCryptJob) => shaCrypt(job.alg, job.password, job.salt, job.rounds));

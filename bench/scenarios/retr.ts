/**
 * `retr`: each of C clients logs in as its own user and RETRs its whole maildrop (LIST, then
 * RETR 1..n, QUIT), again and again. Every message is compared byte for byte with what was
 * seeded (its dot-stuffed CRLF wire form, terminator included) and its length with its LIST size
 * (RetrCheck). One unmeasured pass per user first, so first-sight sizing and the page cache do
 * not count. Each pass is one session, so its login is included (about 5% of a pass's server CPU
 * with the default 32 MiB maildrop).
 *
 * With `--threads N` > 1 the clients are spread over N worker threads, for a server that can
 * outrun one client thread; the default, 1, runs them in the main thread: on the 2-core bench
 * machine the checked client needs ~0.3–0.5 CPU-s/GB, far from one core, and each worker costs
 * ~0.05 CPU-s/GB more (measured against poplar, 100 KB and 5 MB messages). "bench client CPU" is the whole
 * process's CPU either way (process.cpuUsage is getrusage(RUSAGE_SELF): every thread).
 */
import { Worker } from 'node:worker_threads';
import type { Args } from '../args.js';
import { dbCpuMetric, startSpan, type Result } from '../measure.js';
import { commonFrom, seedUsers, usersOf, boxIds } from './common.js';
import { RetrUsers, type RetrCount, type RetrJob, type WorkerReply } from './retr-worker.js';

const label = (size: number): string => (size >= 1 << 20 ? `${Math.round(size / (1 << 20))}MB` : `${Math.round(size / 1024)}KB`);

export async function retr(a: Args): Promise<Result> {
  const c = commonFrom(a);
  const size = a.num('size', 100 * 1024);
  const clients = a.num('clients', 4);
  const threads = Math.max(1, Math.min(clients, a.num('threads', 1)));
  const messages = a.num('messages', Math.max(2, Math.round((32 << 20) / size))); // ~32 MiB: login is ~5% of a pass
  const box = `retr${label(size)}`;
  const users = usersOf(a.str('user-prefix', `${box.toLowerCase()}-u`), clients);
  seedUsers(c, users, { ids: boxIds(box, messages), sizeOf: () => size });
  const job = (share: readonly string[]): RetrJob => ({ target: c.target, password: c.password, seed: c.seed, size, box, messages, users: share });
  const shares = Array.from({ length: threads }, (_, t) => users.filter((_, i) => i % threads === t));
  const durationMs = a.num('duration', 10) * 1000;

  let end: (() => ReturnType<ReturnType<typeof startSpan>>) | undefined;
  let count: RetrCount;
  if (threads === 1) {
    const local = new RetrUsers(job(users));
    await local.warmUp();
    end = startSpan(c.serverPid, c.dbPid);
    count = await local.run(durationMs);
  } else {
    const workers = shares.map((s) => new Worker(new URL('./retr-worker.js', import.meta.url), { workerData: { retr: job(s) } }));
    try {
      const replies = workers.map((w) => replier(w));
      await Promise.all(replies.map((next) => next())); // every worker warmed up
      end = startSpan(c.serverPid, c.dbPid);
      for (const w of workers) w.postMessage({ durationMs });
      const counts = (await Promise.all(replies.map((next) => next()))) as RetrCount[];
      count = counts.reduce((t, r) => ({ bytes: t.bytes + r.bytes, messages: t.messages + r.messages }), { bytes: 0, messages: 0 });
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
  }
  const s = end();
  const { bytes, messages: verified } = count;
  const name = `retr ${label(size)}`;
  return {
    scenario: name,
    metrics: [
      { name: `${name} MB/s`, value: bytes / 1e6 / s.wallS, unit: 'MB/s', better: 'higher' },
      ...(s.serverCpuS === undefined
        ? []
        : [{ name: `${name} server CPU per GB`, value: s.serverCpuS / (bytes / 1e9), unit: 'CPU-s/GB', better: 'lower' as const }]),
      ...dbCpuMetric(s, `${name} database CPU per GB`, bytes / 1e9, 1, 'CPU-s/GB'),
    ],
    ...s,
    verified,
    notes: [
      `${clients} clients × ${messages} messages of ${size} octets in ${threads} thread${threads === 1 ? '' : 's'}; ${(bytes / 1e6).toFixed(0)} MB received; bench client ${(s.clientCpuS / (bytes / 1e9)).toFixed(2)} CPU-s/GB`,
    ],
  };
}

/** Successive replies of a worker; an error reply, a crash or an early exit rejects. */
function replier(w: Worker): () => Promise<Exclude<WorkerReply, { error: string }>> {
  const queue: WorkerReply[] = [];
  let waiting: { resolve: (r: WorkerReply) => void; reject: (e: Error) => void } | undefined;
  let failure: Error | undefined;
  const fail = (e: Error): void => {
    failure ??= e;
    waiting?.reject(failure);
    waiting = undefined;
  };
  w.on('message', (m: WorkerReply) => {
    if ('error' in m) return fail(new Error(m.error));
    if (waiting) {
      waiting.resolve(m);
      waiting = undefined;
    } else queue.push(m);
  });
  w.on('error', fail);
  w.on('exit', (code) => fail(new Error(`retr worker exited (${code})`)));
  return () =>
    new Promise((resolve, reject) => {
      const m = queue.shift();
      if (m !== undefined) resolve(m as Exclude<WorkerReply, { error: string }>);
      else if (failure) reject(failure);
      else waiting = { resolve: resolve as (r: WorkerReply) => void, reject };
    });
}

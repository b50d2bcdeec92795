/**
 * The shared worker pool (src/workers/pool.ts), driven through the Maildir first-sight worker: jobs run
 * in-thread until a thread has loaded; a job that may wait for a start runs on a thread; a failed
 * job's error keeps its code; idle threads end and never keep the process alive; where threads
 * cannot start, even a job waiting for one runs in-thread. Temporary files only, no socket.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BulkJob } from '../../src/storage/maildir/maildir-bulk-worker.js';
import { WorkerPool } from '../../src/workers/pool.js';

const WORKER = new URL('../../src/storage/maildir/maildir-bulk-worker.js', import.meta.url);
const sizeJob = (root: string, rels: string[]): BulkJob => ({ op: 'size', root, rels });
const inThread = async (job: BulkJob): Promise<Float64Array> => Float64Array.from(job.op === 'size' ? job.rels : job.names, () => 42);

describe('the shared worker pool (one start, idle and crash policy)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poplar-pool-'));
    await writeFile(join(dir, 'a'), 'x\ny\n');
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('R-S4 a job runs in-thread until a thread has loaded, then on the thread; one that may wait runs on a thread at once', async () => {
    const pool = new WorkerPool({ name: 'test', worker: WORKER, size: 1, keep: 1, inThread });
    pool.warm();
    assert.deepEqual([...(await pool.run(sizeJob(dir, ['a'])))], [42], 'nothing loaded yet: in-thread');
    await pool.ready();
    assert.deepEqual([...(await pool.run(sizeJob(dir, ['a'])))], [6]);
    const cold = new WorkerPool({ name: 'test', worker: WORKER, size: 1, idleMs: 60_000, inThread });
    assert.deepEqual([...(await cold.run(sizeJob(dir, ['a']), { wait: true }))], [6]);
    assert.deepEqual(cold.counts, { inWorker: 1, inThread: 0 });
    cold.setIdleMs(10);
  });

  it('R-S4 an error thrown on a thread comes back with its message and code', async () => {
    const pool = new WorkerPool({ name: 'test', worker: WORKER, size: 1, idleMs: 60_000, inThread });
    await assert.rejects(pool.run(sizeJob(dir, ['a/b']), { wait: true }), (err: NodeJS.ErrnoException) => err.code === 'ENOTDIR');
    pool.setIdleMs(10);
  });

  it('R-S4 where threads cannot start, a job waiting for one runs in-thread, and so do later ones', async () => {
    const pool = new WorkerPool({ name: 'test', worker: new URL('../../src/workers/no-such-worker.js', import.meta.url), size: 2, idleMs: 60_000, inThread });
    assert.deepEqual([...(await pool.run(sizeJob(dir, ['a']), { wait: true }))], [42]);
    assert.equal(pool.fallback, true);
    assert.deepEqual([...(await pool.run(sizeJob(dir, ['a']), { wait: true }))], [42]);
    assert.equal(pool.threads.length, 0);
  });

  it('idle threads beyond those kept end after idleMs', async () => {
    const pool = new WorkerPool({ name: 'test', worker: WORKER, size: 2, idleMs: 50, inThread });
    await Promise.all([pool.run(sizeJob(dir, ['a']), { wait: true }), pool.run(sizeJob(dir, ['a']), { wait: true })]);
    assert.ok(pool.loadedTotal >= 1 && pool.counts.inWorker === 2); // they may already have ended under load
    const until = Date.now() + 10_000;
    while (pool.threads.length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.equal(pool.threads.length, 0);
    assert.equal(pool.loaded, 0);
  });

  it('a pool whose threads are idle, kept or not, does not keep the process alive', async () => {
    await mkdir(join(dir, 'sub'));
    const mod = fileURLToPath(new URL('../../src/workers/pool.js', import.meta.url));
    const script = `const { WorkerPool } = await import(${JSON.stringify(mod)});
      const worker = new URL(${JSON.stringify(WORKER.href)});
      const kept = new WorkerPool({ name: 'k', worker, size: 2, keep: 2, inThread: async () => 0 });
      await kept.ready();
      const idle = new WorkerPool({ name: 'i', worker, size: 1, idleMs: 600000, inThread: async () => 0 });
      const sizes = await idle.run({ op: 'size', root: ${JSON.stringify(dir)}, rels: ['a'] }, { wait: true });
      console.log(kept.loaded, sizes[0]);`;
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
    });
    assert.equal(out.trim(), '2 6');
  });
});

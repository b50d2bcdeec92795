/**
 * R-X16: the worker processes start with WORKER_V8_FLAGS (cli/serve-primary.ts), a larger first
 * old-generation limit than V8's default, unless node was given that option already (on its
 * command line or in NODE_OPTIONS): the operator's choice wins. The effect on RETR from
 * PostgreSQL is measured in bench/ (docs/benchmarks.md, "The workers' heap"), not here.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { WORKER_V8_FLAGS, workerExecArgv } from '../../src/cli/serve-primary.js';
import { startPoplar } from '../helpers/poplar-process.js';
import { liveWorkerPids } from '../helpers/workers.js';

const cmdline = async (pid: number): Promise<string[]> => (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');

describe('R-X16 the workers\' V8 options', () => {
  it('R-X16 added before node\'s own options, and left out when node was given the same option', () => {
    assert.deepEqual(workerExecArgv([]), [...WORKER_V8_FLAGS]);
    assert.deepEqual(workerExecArgv(['--enable-source-maps']), [...WORKER_V8_FLAGS, '--enable-source-maps']);
    assert.deepEqual(workerExecArgv(['--initial-old-space-size=512']), ['--initial-old-space-size=512']);
    assert.deepEqual(workerExecArgv(['--initial_old_space_size=512']), ['--initial_old_space_size=512']);
    assert.deepEqual(workerExecArgv([], '--max-old-space-size=900 --initial-old-space-size=256'), []);
    assert.deepEqual(workerExecArgv([], '--max-old-space-size=900'), [...WORKER_V8_FLAGS]);
  });

  it('R-X16 each worker process of `poplar serve` runs with them', { skip: process.platform !== 'linux' && 'reads /proc' }, async () => {
    const p = await startPoplar({ workers: 2 });
    try {
      const pids = liveWorkerPids(p);
      assert.equal(pids.length, 2);
      for (const pid of pids) {
        const args = await cmdline(pid);
        for (const flag of WORKER_V8_FLAGS) assert.ok(args.includes(flag), `worker ${pid}: ${args.join(' ')}`);
      }
    } finally {
      await p.cleanup();
    }
  });
});

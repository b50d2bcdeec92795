/** The RETR buffer pool (chunk-pool.ts): only buffers it handed out come back, once each. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ChunkPool, pooledView, releaseChunk, type PooledChunk } from './chunk-pool.js';

describe('chunk pool', () => {
  it('reuses a released buffer, also when released through a view of it', () => {
    const pool = new ChunkPool(1024, 4);
    const a = pool.take();
    releaseChunk(a.subarray(10, 20));
    assert.equal(pool.held, 1);
    assert.equal(pool.take(), a);
    assert.equal(pool.held, 0);
  });

  it('ignores a second release and buffers it never handed out', () => {
    const pool = new ChunkPool(1024, 4);
    const a = pool.take();
    releaseChunk(a);
    releaseChunk(a);
    assert.equal(pool.held, 1, 'released twice, held once');
    releaseChunk(Buffer.alloc(1024));
    releaseChunk(Buffer.from('not pooled'));
    assert.equal(pool.held, 1);
    const b = pool.take();
    const c = pool.take();
    assert.notEqual(b, c, 'a buffer in use is never handed out twice');
  });

  it('keeps at most `keep` free buffers', () => {
    const pool = new ChunkPool(64, 2);
    const taken = [pool.take(), pool.take(), pool.take()];
    for (const t of taken) releaseChunk(t);
    assert.equal(pool.held, 2);
  });
});

describe('pooled chunk ownership (chunk-pool.ts)', () => {
  it('R-X9 a chunk goes back to the pool that made it, from any view, with no registry', () => {
    const reads = new ChunkPool(64, 4);
    const outs = new ChunkPool(64, 4);
    const a = reads.take();
    const b = outs.take();
    releaseChunk(pooledView(b, 1, 5));
    releaseChunk(a.subarray(3));
    assert.equal(reads.held, 1);
    assert.equal(outs.held, 1);
    assert.equal(outs.take(), b);
  });

  it('a PooledChunk is made only by a pool: a plain buffer is not one (a type error)', () => {
    const plain = Buffer.alloc(8);
    // @ts-expect-error a plain Buffer is not a PooledChunk
    const view: PooledChunk = pooledView(plain, 0, 4);
    releaseChunk(view); // and at run time, giving it back is ignored
    assert.equal(view.length, 4);
  });
});

/**
 * The lock file (storage/file-lock.ts): a holder releases only a lock that is still its own. A holder
 * judged stale (hung past LOCK_STALE_MS) may have lost its lock to another process; releasing
 * then must leave the other's lock alone, even when the file system gave the new lock file the
 * inode number the old one had (ownership is inode and birth time, or the content).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FileLock, LOCK_WAITING_FRESH_MS } from '../../src/storage/file-lock.js';
import { waitFor } from '../helpers/wait.js';

describe('Maildir lock file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poplar-lock-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('release removes the lock it holds', async () => {
    const path = join(dir, 'x.lock');
    const lock = await FileLock.acquireOrFail(path, 100);
    assert.match(await readFile(path, 'utf8'), new RegExp(`^${process.pid} `));
    await lock.release();
    await assert.rejects(stat(path), { code: 'ENOENT' });
  });

  it('release leaves alone a lock another holder made after taking ours away (same inode number or not)', async () => {
    const path = join(dir, 'x.lock');
    for (let i = 0; i < 20; i++) {
      const lock = await FileLock.acquireOrFail(path, 100);
      const before = await stat(path);
      await unlink(path); // broken as stale by another process…
      const theirs = `1 elsewhere.example ${Date.now()} other${i}\n`;
      await writeFile(path, theirs); // …which took it
      const after = await stat(path);
      await lock.release();
      assert.equal(await readFile(path, 'utf8'), theirs, `round ${i} (inode number reused: ${before.ino === after.ino})`);
      await unlink(path);
    }
  });

  it('R-S12 a waiter marks itself, the holder sees it while it is fresh, and the winner removes the mark', async () => {
    const path = join(dir, 'x.lock');
    const held = await FileLock.acquireOrFail(path, 100);
    assert.equal(await FileLock.othersWaiting(path), false, 'nobody has waited yet');
    assert.equal(await FileLock.acquire(path, 30, { announce: true }), undefined, 'held by another');
    assert.equal(await FileLock.othersWaiting(path), true, 'the failed tries left a fresh mark');
    await sleep(LOCK_WAITING_FRESH_MS + 50);
    assert.equal(await FileLock.othersWaiting(path), false, 'a mark nobody touches goes stale');
    const waiting = FileLock.acquire(path, 5000, { announce: true });
    // Its first failed try leaves the mark (a timer on a loaded machine may take a while).
    await waitFor(() => FileLock.othersWaiting(path), 4000, 'the waiter\'s mark');
    await held.release();
    const won = await waiting;
    assert.ok(won !== undefined);
    assert.deepEqual(await readdir(dir), ['x.lock'], 'the mark went with the wait');
    await won.release();
  });

  it('a symbolic link in the waiting mark\'s place is never followed', async () => {
    const path = join(dir, 'x.lock');
    const target = join(dir, 'target');
    await writeFile(target, 'keep');
    const before = await stat(target);
    await symlink(target, `${path}.waiting`);
    const held = await FileLock.acquireOrFail(path, 100);
    await sleep(20);
    assert.equal(await FileLock.acquire(path, 30, { announce: true }), undefined);
    assert.equal(await readFile(target, 'utf8'), 'keep');
    assert.equal((await stat(target)).mtimeMs, before.mtimeMs, 'the link\'s target was not touched');
    await held.release();
  });

  it('a waiter that does not announce itself leaves no waiting mark', async () => {
    const path = join(dir, 'x.lock');
    const held = await FileLock.acquireOrFail(path, 100);
    assert.equal(await FileLock.acquire(path, 30), undefined);
    assert.equal(await FileLock.othersWaiting(path), false);
    assert.deepEqual(await readdir(dir), ['x.lock']);
    await held.release();
  });
});

/**
 * The lock file (storage/file-lock.ts): a holder releases only a lock that is still its own. A holder
 * judged stale (hung past LOCK_STALE_MS) may have lost its lock to another process; releasing
 * then must leave the other's lock alone, even when the file system gave the new lock file the
 * inode number the old one had (ownership is inode and birth time, or the content).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { FileLock } from '../../src/storage/file-lock.js';

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
});

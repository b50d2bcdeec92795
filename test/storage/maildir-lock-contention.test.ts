/**
 * Issue 14 (deliveries with two workers): a delivery batch keeps the uidlist lock file a moment
 * for the next batch, which pays off while one process writes the maildrop. When two processes
 * (two workers) deliver to it, two keepers handed it over only every LOCK_HOLD_MAX_MS, each
 * stalling the other's deliveries meanwhile. A store that had to wait for the lock stops keeping
 * it for a while. Two stores with their own registries stand for two processes; the lock holder
 * here is a FileLock taken directly, released when the test says (no timing).
 */
import assert from 'node:assert/strict';
import { existsSync, watch } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { FileLock } from '../../src/storage/maildir/maildir-lock.js';
import { UIDLIST_LOCK_FILE } from '../../src/storage/maildir/maildir-maildrop.js';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import { MaildropRegistry } from '../../src/storage/maildir/maildir-registry.js';
import { waitFor } from '../helpers/wait.js';

describe('Maildir uidlist lock under contention', () => {
  let dir: string;
  let root: string;
  let store: MaildirStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poplar-contention-'));
    root = join(dir, 'Maildir');
    store = new MaildirStore({ path: () => root, registry: new MaildropRegistry() });
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('R-S12 a store that waited for the uidlist lock releases it after its batch instead of keeping it', async () => {
    await store.deliver('alice', Buffer.from('first\r\n'));
    const lockPath = join(root, UIDLIST_LOCK_FILE);
    assert.ok(existsSync(lockPath), 'uncontended: the lock is kept for the next batch');
    await waitFor(() => !existsSync(lockPath));
    // Another writer holds the lock; this store's delivery tries to take it and finds it held:
    // each try links a temporary file to the lock's name and then removes it (maildir-lock.ts),
    // so the second name event (made, removed) of such a file means one try has failed.
    const other = await FileLock.acquireOrFail(lockPath);
    let tries = 0;
    const watcher = watch(root, (event, name) => {
      // 'rename': made or removed ('change' is its content being written)
      if (event === 'rename' && name !== null && name.startsWith(`${UIDLIST_LOCK_FILE}.`) && name.endsWith('.tmp')) tries++;
    });
    const delivery = store.deliver('alice', Buffer.from('second\r\n'));
    try {
      await waitFor(() => tries >= 2, 5000, 'a failed try for the held lock');
    } finally {
      watcher.close();
    }
    await other.release();
    const { uid } = await delivery;
    assert.equal(uid, 2);
    assert.equal(existsSync(lockPath), false, 'released at once after a wait: the other writer gets its turn');
    const third = await store.deliver('alice', Buffer.from('third\r\n'));
    assert.equal(third.uid, 3);
    assert.equal(existsSync(lockPath), false, 'and not kept for the batches right after');
  });
});

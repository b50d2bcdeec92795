/**
 * The maildrop objects and their registry (maildir-maildrop.ts, maildir-registry.ts): stores that
 * share a registry coordinate as one store does; stores on separate registries coordinate
 * through the files, as two processes do; a failed open or expiry gives back everything it took.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { FileLock } from '../../src/storage/file-lock.js';
import { MaildropRegistry } from '../../src/storage/maildir/maildir-registry.js';
import { EXPIRE_LOCK_FILE } from '../../src/storage/maildir/maildir-sessions.js';
import { MaildirStore, SESSION_LOCK_FILE } from '../../src/storage/maildir/maildir-store.js';
import { storageError } from './conformance.js';

const plain = { exclusive: false };
const exclusive = { exclusive: true };

describe('Maildir maildrop registry', () => {
  let dir: string;
  let root: string;
  const stores: MaildirStore[] = [];
  const storeOn = (registry?: MaildropRegistry, lockWaitMs?: number): MaildirStore => {
    const s = new MaildirStore({
      path: () => root,
      ...(registry === undefined ? {} : { registry }),
      ...(lockWaitMs === undefined ? {} : { lockWaitMs }),
    });
    stores.push(s);
    return s;
  };
  const markers = async (): Promise<string[]> => (await readdir(root)).filter((n) => n.startsWith('poplar-session.'));

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poplar-registry-'));
    root = join(dir, 'Maildir');
  });
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('R-S3 R-S18 stores sharing a registry are one store: the lock rule sees both, one marker, an expiry ignores a lingering marker of the other', async () => {
    const registry = new MaildropRegistry();
    const a = storeOn(registry);
    const b = storeOn(registry);
    await a.deliver('alice', Buffer.from('m1\r\n'));
    assert.equal((await b.deliver('alice', Buffer.from('m2\r\n'))).uid, 2);
    const snap = await a.open('alice', plain);
    await assert.rejects(b.open('alice', exclusive), storageError('MAILBOX_LOCKED'), "an exclusive open sees the other store's plain snapshot");
    const other = await b.open('alice', plain);
    assert.equal((await markers()).length, 1, 'one session marker');
    assert.equal((await b.expire('alice', () => true, { dryRun: true })).inUse, true);
    await other.release();
    await snap.release();
    assert.equal((await markers()).length, 1, 'the marker lingers');
    const r = await b.expire('alice', () => true, { dryRun: true });
    assert.equal(r.inUse, false, "the lingering marker of the other store covers no session");
    assert.equal(r.removed.length, 2);
    await a.close();
    assert.deepEqual(await markers(), [], "closing either store removes the registry's lingering markers");
  });

  it('R-S3 R-S12 stores on separate registries coordinate as two processes do, through the files', async () => {
    const a = storeOn();
    const b = storeOn();
    const uids = await Promise.all([0, 1, 2, 3].map((i) => (i % 2 === 0 ? a : b).deliver('alice', Buffer.from(`m${i}\r\n`))));
    assert.deepEqual(uids.map((u) => u.uid).sort(), [1, 2, 3, 4], 'one uid sequence');
    const x = await a.open('alice', exclusive);
    await assert.rejects(b.open('alice', plain), storageError('MAILBOX_LOCKED'), 'poplar-pop3.lock is seen');
    await x.release();
    const snap = await a.open('alice', plain);
    assert.equal(snap.messages.length, 4);
    assert.equal((await b.expire('alice', () => true)).inUse, true, "the other store's marker is a live session's");
    await snap.release();
  });

  it('R-S3 an open that fails gives back its claim, its marker and its exclusive lock', async () => {
    const store = storeOn(undefined, 100);
    await store.deliver('alice', Buffer.from('m1\r\n'));
    // Another process's exclusive session: this store's opens fail after claiming their slot.
    const foreign = await FileLock.acquire(join(root, SESSION_LOCK_FILE), 0);
    assert.ok(foreign);
    await assert.rejects(store.open('alice', plain), storageError('MAILBOX_LOCKED'));
    await assert.rejects(store.open('alice', exclusive), storageError('MAILBOX_LOCKED'));
    await foreign.release();
    await store.close(); // removes the marker the failed opens left lingering
    assert.deepEqual(await markers(), []);
    // An expiry of another process holds its lock: the open creating a marker times out.
    const expiry = await FileLock.acquire(join(root, EXPIRE_LOCK_FILE), 0);
    assert.ok(expiry);
    await assert.rejects(store.open('alice', exclusive), storageError('IO'));
    assert.deepEqual(await markers(), [], 'the marker of the failed open is gone at once');
    await expiry.release();
    const x = await store.open('alice', exclusive);
    assert.equal(x.messages.length, 1, 'no failed open left a claim behind');
    await x.release();
    await store.close();
    assert.deepEqual(await markers(), [], 'nor a marker');
    assert.deepEqual((await readdir(root)).filter((n) => n.endsWith('.lock')), [], 'nor a lock');
  });
});

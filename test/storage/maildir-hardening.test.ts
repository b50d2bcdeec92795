/**
 * Maildir hardening found in review of the performance work: special files in the Maildir, the
 * bound on kept uidlist handles, and releasing a lock whose identity the file system misreports.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readlink, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { FileLock } from '../../src/storage/file-lock.js';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import { storageError } from './conformance.js';

const plain = { exclusive: false };

describe('Maildir hardening', () => {
  let dir: string;
  let store: MaildirStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poplar-harden-'));
    store = new MaildirStore({ path: (m) => join(dir, m) });
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  for (const reads of ['event-loop', 'threadpool'] as const) {
    it(`R-X7 R-S4 a FIFO in new/ is left out and one named with a size in cur/ is refused by RETR, without blocking (${reads})`, async () => {
      const s = new MaildirStore({ path: (m) => join(dir, m), reads });
      await s.deliver('alice', Buffer.from('Subject: real\r\n\r\nbody\r\n'));
      execFileSync('mkfifo', [join(dir, 'alice', 'new', '1700000000.fifo1.host')]);
      const first = await s.open('alice', plain);
      assert.equal(first.messages.length, 1, 'the FIFO without a size is not a message');
      await first.release();
      execFileSync('mkfifo', [join(dir, 'alice', 'cur', '1700000001.fifo2.host,S=10,W=10:2,')]);
      const snap = await s.open('alice', plain);
      assert.equal(snap.messages.length, 2, 'listed from its name alone');
      const fifo = snap.messages.find((m) => m.id.includes('fifo2'))!;
      await assert.rejects(snap.read(fifo.id), storageError('IO'));
      const real = snap.messages.find((m) => !m.id.includes('fifo'))!;
      const chunks: Buffer[] = [];
      for await (const c of await snap.read(real.id)) chunks.push(Buffer.from(c as Buffer));
      assert.match(Buffer.concat(chunks).toString(), /Subject: real/);
      await snap.release();
      await s.close();
    });
  }

  it('R-X9 R-X6 deliveries to many maildrops keep at most 64 uidlist files open', async () => {
    for (let i = 0; i < 80; i++) await store.deliver(`u${i}`, Buffer.from(`m${i}\r\n`));
    let open = 0;
    for (const fd of await readdir('/proc/self/fd')) {
      const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
      if (target.startsWith(dir) && target.endsWith('/poplar-uidlist')) open++;
    }
    assert.ok(open > 0 && open <= 64, `${open} uidlist files open`);
  });

  it('R-X6 a lock whose inode or birth time no longer matches is still removed when it holds our token', async () => {
    await mkdir(join(dir, 'x'));
    const path = join(dir, 'x', 'some.lock');
    const lock = await FileLock.acquire(path, 0);
    assert.ok(lock);
    // Same bytes, another inode: what a file system without statx birth times looks like to release().
    await copyFile(path, `${path}.copy`);
    await rename(`${path}.copy`, path);
    await lock.release();
    await assert.rejects(stat(path), { code: 'ENOENT' });
  });
});

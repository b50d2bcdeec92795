/**
 * Issue 14 (login CPU): with `storage.maildir_reads = "event-loop"` (the default) an open of a
 * settled maildrop whose cached listing is still valid checks new/, cur/, the uidlist and the
 * session lock with stats on the server thread, so it makes no thread-pool file-system request
 * (each one costs two thread wake-ups, more than the stat itself). With `threadpool` it does.
 * A delivery's folder checks (root, tmp/, new/ are real directories) run there too. Requests are
 * counted with async_hooks (FSREQPROMISE / FSREQCALLBACK resources), not timed.
 */
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { writeToNew } from '../../src/storage/maildir/maildir-deliver.js';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import { MaildropRegistry } from '../../src/storage/maildir/maildir-registry.js';
import type { ReadMode } from '../../src/storage/maildir/maildir-snapshot.js';

const plain = { exclusive: false };

/** File-system requests handed to libuv's thread pool while `fn` runs. */
async function poolRequests(fn: () => Promise<unknown>): Promise<number> {
  let count = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'FSREQPROMISE' || type === 'FSREQCALLBACK') count++;
    },
  });
  hook.enable();
  try {
    await fn();
  } finally {
    hook.disable();
  }
  return count;
}

describe('Maildir settled open', () => {
  let dir: string;
  let root: string;
  const stores: MaildirStore[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poplar-settled-'));
    root = join(dir, 'Maildir');
  });
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A store whose maildrop holds two messages and a trusted cached listing. */
  async function settled(reads: ReadMode): Promise<MaildirStore> {
    const store = new MaildirStore({ path: () => root, dirtyWindowMs: 0, registry: new MaildropRegistry(), reads });
    stores.push(store);
    await store.deliver('alice', Buffer.from('one\r\n'));
    await store.deliver('alice', Buffer.from('two\r\n'));
    await (await store.open('alice', plain)).release(); // first sight: new/ -> cur/
    // Wait (a condition) until a change made now would get a later ctime than new/ and cur/ have.
    const probe = join(dir, 'probe');
    for (;;) {
      const [n, c] = await Promise.all([stat(join(root, 'new'), { bigint: true }), stat(join(root, 'cur'), { bigint: true })]);
      await writeFile(probe, 'x');
      const p = await stat(probe, { bigint: true });
      const last = n.ctimeNs > c.ctimeNs ? n.ctimeNs : c.ctimeNs;
      if (p.ctimeNs > last && BigInt(Date.now()) * 1_000_000n > last + 1_000_000n) break;
    }
    const cached = await store.open('alice', plain); // lists the settled maildir: trusted from now on
    const again = await store.open('alice', plain);
    assert.equal(again.list, cached.list, 'the listing is cached');
    await cached.release();
    await again.release();
    return store;
  }

  it('R-S3 R-S12 with event-loop reads a settled open makes no thread-pool request and sees the same listing', async () => {
    const store = await settled('event-loop');
    let messages = 0;
    const requests = await poolRequests(async () => {
      const s = await store.open('alice', plain);
      messages = s.messages.length;
      await s.release();
    });
    assert.equal(messages, 2);
    assert.equal(requests, 0, 'new/, cur/, the uidlist and the session lock are checked on the server thread');
  });

  it('R-S3 with threadpool reads the same checks go through the thread pool', async () => {
    const store = await settled('threadpool');
    const requests = await poolRequests(async () => (await store.open('alice', plain)).release());
    assert.ok(requests >= 3, `${requests} thread-pool requests`);
  });

  it('R-S3 an exclusive session lock file of another store is still seen with event-loop reads', async () => {
    const store = await settled('event-loop');
    const other = new MaildirStore({ path: () => root, dirtyWindowMs: 0, registry: new MaildropRegistry() });
    stores.push(other);
    const exclusive = await other.open('alice', { exclusive: true });
    await assert.rejects(store.open('alice', plain), (e: Error & { code?: string }) => e.code === 'MAILBOX_LOCKED');
    await exclusive.release();
    const s = await store.open('alice', plain);
    assert.equal(s.messages.length, 2);
    await s.release();
  });
});

describe('Maildir delivery folder checks', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poplar-deliver-checks-'));
    for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(dir, sub));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  let n = 0;
  const unique = (): string => `1700000000.M${++n}P1.test`;

  it('R-X6 with event-loop reads a delivery checks root, tmp/ and new/ without the thread pool', async () => {
    const pooled = await poolRequests(() => writeToNew(dir, Buffer.from('a\r\n'), {}, unique, false));
    const onLoop = await poolRequests(() => writeToNew(dir, Buffer.from('b\r\n'), {}, unique, true));
    assert.equal(pooled - onLoop, 3, `${pooled} requests through the pool against ${onLoop}`);
  });

  it('R-X6 a tmp/ that is a symbolic link is refused by the event-loop check too', async () => {
    await rm(join(dir, 'tmp'), { recursive: true });
    await mkdir(join(dir, 'elsewhere'));
    await symlink(join(dir, 'elsewhere'), join(dir, 'tmp'));
    await assert.rejects(writeToNew(dir, Buffer.from('c\r\n'), {}, unique, true), /symbolic link/);
  });
});

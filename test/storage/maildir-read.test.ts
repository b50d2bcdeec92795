/**
 * Reading Maildir messages for RETR/TOP (maildir-snapshot.ts `read` and `open`): byte-exact in
 * pooled chunks whatever the size (one chunk, exactly one chunk, several), and the file descriptor
 * is closed however the reader stops — at the end, early (TOP), or destroying the stream unread.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { once } from 'node:events';
import { RETR_READ_CHUNK } from '../../src/protocol/limits.js';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';

const plain = { exclusive: false };
/** Descriptors of this process open on message files (cur/ or new/ of `root`); others come and go. */
async function messageFds(root: string): Promise<number> {
  let n = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target.startsWith(join(root, 'cur') + '/') || target.startsWith(join(root, 'new') + '/')) n++;
  }
  return n;
}

for (const reads of ['event-loop', 'threadpool'] as const)
describe(`Maildir message reading (storage.maildir_reads = ${reads})`, () => {
  let dir: string;
  let store: MaildirStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poplar-read-'));
    store = new MaildirStore({ path: () => join(dir, 'Maildir'), reads });
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('R-X7 R-X9 R-S4 reads any size byte-exact in chunks of at most RETR_READ_CHUNK, and closes the file', async () => {
    const sizes = [0, 1, 1000, RETR_READ_CHUNK - 1, RETR_READ_CHUNK, RETR_READ_CHUNK + 1, 3 * RETR_READ_CHUNK + 17];
    const bodies = sizes.map((n, k) => Buffer.alloc(n, 'abcdefgh\r\n'.charAt(k % 10)));
    for (const b of bodies) await store.deliver('alice', b);
    const snap = await store.open('alice', plain);
    const before = await messageFds(join(dir, 'Maildir'));
    for (const [k, m] of snap.messages.entries()) {
      const chunks: Buffer[] = [];
      for await (const c of await snap.read(m.id)) chunks.push(Buffer.from(c as Buffer));
      for (const c of chunks) assert.ok(c.length > 0 && c.length <= RETR_READ_CHUNK);
      assert.ok(Buffer.concat(chunks).equals(bodies[k]!), `message of ${sizes[k]} octets`);
    }
    await new Promise((r) => setImmediate(r));
    assert.equal(await messageFds(join(dir, 'Maildir')), before, 'every file closed');
    await snap.release();
  });

  it(`R-X7 R-S4 open() gives the same bytes chunk by chunk, ${reads === 'event-loop' ? 'synchronously' : 'as promises'}, and closes the file at the end or on close()`, async () => {
    const body = Buffer.alloc(2 * RETR_READ_CHUNK + 5, 'line\n.dot\r\n');
    await store.deliver('alice', body);
    const snap = await store.open('alice', plain);
    const id = snap.messages[0]!.id;
    const root = join(dir, 'Maildir');
    const before = await messageFds(root);
    const source = await snap.open!(id);
    const chunks: Buffer[] = [];
    for (;;) {
      const next = source.next();
      if (chunks.length < 3) assert.equal(next instanceof Promise, reads === 'threadpool', 'a read on the event loop answers at once');
      const chunk = await next;
      if (chunk === undefined) break;
      chunks.push(Buffer.from(chunk));
    }
    assert.ok(Buffer.concat(chunks).equals(body));
    assert.equal(chunks.length, 3);
    assert.equal(await messageFds(root), before, 'closed at the end');
    assert.equal(await source.next(), undefined, 'and stays at the end');
    const early = await snap.open!(id);
    assert.ok((await early.next())!.length > 0);
    assert.equal(await messageFds(root), before + 1, 'open until closed');
    early.close();
    early.close();
    assert.equal(await messageFds(root), before, 'close() before the end closes the file, and again is harmless');
    assert.equal(await early.next(), undefined);
    await snap.release();
  });

  it('R-X7 closes the file when the reader stops early or destroys the stream unread', async () => {
    await store.deliver('alice', Buffer.alloc(3 * RETR_READ_CHUNK, 'x'));
    const snap = await store.open('alice', plain);
    const id = snap.messages[0]!.id;
    const before = await messageFds(join(dir, 'Maildir'));
    for await (const _ of await snap.read(id)) break; // TOP stops after the first chunk
    const unread = await snap.read(id);
    assert.equal(await messageFds(join(dir, 'Maildir')), before + 1, 'open while the stream is');
    unread.destroy();
    await once(unread, 'close');
    assert.equal(await messageFds(join(dir, 'Maildir')), before);
    await snap.release();
  });
});

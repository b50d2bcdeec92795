/**
 * The one MailStore conformance suite (DESIGN.md habit 4): every backend runs exactly these
 * tests. Each test is named after the requirement it proves (REQUIREMENTS.md).
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Readable } from 'node:stream';
import { StorageError } from '../../src/errors.js';
import { BODY_READ_CHUNK, RETR_READ_CHUNK } from '../../src/protocol/limits.js';
import { openMessage, type MailStore, type MaildropSnapshot } from '../../src/storage/mail-store.js';
import { registerPolicyCases } from './conformance-policy.js';
import { registerHideCases } from './conformance-hide.js';

export interface StoreUnderTest {
  store: MailStore;
  cleanup: () => Promise<void>;
}

/** Asserts a rejection is a StorageError with `code`. */
export function storageError(code: StorageError['code']) {
  return (err: unknown): true => {
    assert.ok(err instanceof StorageError, `expected StorageError(${code}), got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  };
}

/**
 * R-S19's line-end rule written independently of CrlfSizer (a regex over the bytes), so the
 * suite checks the sizer rather than agreeing with it by construction.
 */
export function referenceCrlfSize(bytes: Buffer): number {
  let s = bytes.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n');
  if (s.length > 0 && !s.endsWith('\r\n')) s += '\r\n';
  return s.length;
}

export async function readChunks(stream: Readable): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return chunks;
}

export async function readAll(snapshot: MaildropSnapshot, id: string): Promise<Buffer> {
  return Buffer.concat(await readChunks(await snapshot.read(id)));
}

/** The bytes of a message through MaildropSnapshot.open (the RETR/TOP path). */
async function sourceBytes(snapshot: MaildropSnapshot, id: string): Promise<Buffer> {
  const source = await openMessage(snapshot, id);
  const chunks: Buffer[] = [];
  for (let chunk = await source.next(); chunk !== undefined; chunk = await source.next()) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

async function* inChunks(parts: readonly string[]): AsyncIterable<Buffer> {
  for (const part of parts) {
    await new Promise((resolve) => setImmediate(resolve));
    yield Buffer.from(part, 'latin1');
  }
}

const plain = { exclusive: false };
const exclusive = { exclusive: true };

export function runMailStoreConformance(
  name: string,
  make: () => Promise<StoreUnderTest>,
): void {
  describe(`MailStore conformance: ${name}`, () => {
    let store: MailStore;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ store, cleanup } = await make());
    });
    afterEach(async () => {
      await cleanup();
    });

    async function deliverAll(mailbox: string, bodies: readonly string[]) {
      const results = [];
      for (const body of bodies) results.push(await store.deliver(mailbox, Buffer.from(body)));
      return results;
    }

    it('R-S3 open of an unknown maildrop creates it empty; create is idempotent', async () => {
      assert.equal(await store.exists('alice'), false);
      const snap = await store.open('alice', plain);
      assert.deepEqual(snap.messages, []);
      assert.equal(snap.mailbox, 'alice');
      await snap.release();
      assert.equal(await store.exists('alice'), true);
      assert.equal(await store.exists('bob'), false);
      await store.create('bob');
      await store.create('bob');
      assert.equal(await store.exists('bob'), true);
    });

    it('R-S12 deliveries get increasing uids, listed ascending with exact sizes', async () => {
      const bodies = ['Subject: 1\r\n\r\none\r\n', 'Subject: 2\n\ntwo\n', 'Subject: 3\r\n\r\nthree'];
      const delivered = await deliverAll('alice', bodies);
      for (let i = 1; i < delivered.length; i++) {
        assert.ok(delivered[i]!.uid > delivered[i - 1]!.uid, 'uids increase');
      }
      const snap = await store.open('alice', plain);
      assert.deepEqual(
        snap.messages.map((m) => [m.uid, m.size, m.seen]),
        delivered.map((d) => [d.uid, d.size, false]),
      );
      assert.equal(new Set(snap.messages.map((m) => m.id)).size, 3, 'ids are distinct');
      for (const [i, m] of snap.messages.entries()) {
        assert.equal((await readAll(snap, m.id)).toString(), bodies[i]);
        assert.equal((await sourceBytes(snap, m.id)).toString(), bodies[i], 'open() gives what read() gives');
        // A store without open() (it is optional) is read through read().
        const bare: MaildropSnapshot = {
          mailbox: snap.mailbox, list: snap.list, messages: snap.messages,
          read: (id) => snap.read(id), commit: (c) => snap.commit(c), release: async () => undefined,
        };
        assert.equal((await sourceBytes(bare, m.id)).toString(), bodies[i], 'read() through a source');
        const early = await openMessage(bare, m.id);
        early.close();
        assert.equal(await early.next(), undefined, 'closed before the end: no more chunks');
      }
      await snap.release();
    });

    it('R-S12 uids are never reused after deletion', async () => {
      const first = await deliverAll('alice', ['a\r\n', 'b\r\n', 'c\r\n']);
      const highest = Math.max(...first.map((d) => d.uid));
      const snap = await store.open('alice', plain);
      await snap.commit({ expunge: snap.messages.map((m) => m.id), seen: [] });
      await snap.release();
      for (let i = 0; i < 2; i++) {
        const empty = await store.open('alice', plain);
        assert.deepEqual(empty.messages, []);
        await empty.release();
      }
      const later = await deliverAll('alice', ['d\r\n', 'e\r\n']);
      assert.ok(later[0]!.uid > highest, `uid ${later[0]!.uid} reuses one up to ${highest}`);
      assert.ok(later[1]!.uid > later[0]!.uid);
      const again = await store.open('alice', plain);
      assert.deepEqual(again.messages.map((m) => m.uid), later.map((d) => d.uid));
      await again.release();
    });

    it('R-S12 concurrent deliveries to one maildrop get distinct uids', async () => {
      const delivered = await Promise.all(
        Array.from({ length: 20 }, (_, i) => store.deliver('alice', Buffer.from(`m${i}\r\n`))),
      );
      const uids = delivered.map((d) => d.uid);
      assert.equal(new Set(uids).size, 20);
      const snap = await store.open('alice', plain);
      assert.deepEqual(snap.messages.map((m) => m.uid), [...uids].sort((a, b) => a - b));
      const bodies = await Promise.all(snap.messages.map(async (m) => (await readAll(snap, m.id)).toString()));
      assert.deepEqual(bodies.sort(), Array.from({ length: 20 }, (_, i) => `m${i}\r\n`).sort());
      await snap.release();
    });

    it('maildrops are separate', async () => {
      await deliverAll('alice', ['for alice\r\n']);
      await deliverAll('bob', ['for bob\r\n', 'for bob too\r\n']);
      const a = await store.open('alice', plain);
      const b = await store.open('bob', plain);
      assert.equal(a.messages.length, 1);
      assert.equal(b.messages.length, 2);
      assert.equal((await readAll(a, a.messages[0]!.id)).toString(), 'for alice\r\n');
      await a.release();
      await b.release();
    });

    it('R-S3 a snapshot does not see later deliveries', async () => {
      await deliverAll('alice', ['old\r\n']);
      const snap = await store.open('alice', plain);
      const before = snap.messages.map((m) => ({ ...m }));
      await deliverAll('alice', ['new\r\n']);
      assert.deepEqual(snap.messages, before);
      const next = await store.open('alice', plain);
      assert.equal(next.messages.length, 2);
      const newId = next.messages[1]!.id;
      await assert.rejects(snap.read(newId), storageError('MESSAGE_GONE'));
      await snap.release();
      await next.release();
    });

    it('R-S3 read of a message expunged by another session fails MESSAGE_GONE', async () => {
      await deliverAll('alice', ['first\r\n', 'second\r\n']);
      const s1 = await store.open('alice', plain);
      const s2 = await store.open('alice', plain);
      const [gone, kept] = s1.messages;
      await s2.commit({ expunge: [gone!.id], seen: [] });
      await s2.release();
      assert.equal(s1.messages.length, 2, 'the snapshot list does not change');
      await assert.rejects(s1.read(gone!.id), storageError('MESSAGE_GONE'));
      await assert.rejects(openMessage(s1, gone!.id), storageError('MESSAGE_GONE'));
      assert.equal((await readAll(s1, kept!.id)).toString(), 'second\r\n');
      await s1.commit({ expunge: [gone!.id], seen: [gone!.id] }); // already gone: no error
      await s1.release();
    });

    it('R-S4 sizes are exact CRLF octets for bare LF, bare CR and no final newline', async () => {
      const cases: [string, number][] = [
        ['a\r\nb\r\n', 6],
        ['a\nb\n', 6],
        ['a\rb\r', 6],
        ['a\r\nb', 6],
        ['', 0],
        ['x', 3],
        ['\r\n', 2],
        ['\n\n', 4],
        ['\r', 2],
        ['a\r\r\nb\n\rc', 13],
        ['caf\xe9\r\n', 6],
      ];
      for (const [body, expected] of cases) {
        const bytes = Buffer.from(body, 'latin1');
        assert.equal(referenceCrlfSize(bytes), expected, `reference for ${JSON.stringify(body)}`);
        const { size } = await store.deliver('alice', bytes);
        assert.equal(size, expected, `deliver size of ${JSON.stringify(body)}`);
      }
      const snap = await store.open('alice', plain);
      assert.deepEqual(snap.messages.map((m) => m.size), cases.map(([, n]) => n));
      for (const [i, m] of snap.messages.entries()) {
        const stored = await readAll(snap, m.id);
        assert.equal(stored.toString('latin1'), cases[i]![0], 'bytes come back as stored');
      }
      await snap.release();
    });

    it('R-S4 deliver accepts an AsyncIterable in odd chunks, a CR ending a chunk', async () => {
      const parts = ['Subject: chunks\r', '\n\r', '\nline one\r', 'line two\n', '\r', '\r', '\n', 'end\r'];
      const whole = Buffer.from(parts.join(''), 'latin1');
      const { size } = await store.deliver('alice', inChunks(parts));
      assert.equal(size, referenceCrlfSize(whole));
      assert.equal(size, 48);
      const snap = await store.open('alice', plain);
      assert.equal(snap.messages[0]!.size, size);
      assert.deepEqual(await readAll(snap, snap.messages[0]!.id), whole);
      await snap.release();
    });

    it('R-X9 a 5 MB message is read back byte-exact in bounded chunks', async () => {
      const line = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\n');
      const big = Buffer.alloc(5 * 1024 * 1024);
      for (let i = 0; i < big.length; i++) big[i] = line[i % line.length]!;
      big[1000] = 0x0d; // one bare CR
      const { size } = await store.deliver('alice', big);
      assert.equal(size, referenceCrlfSize(big));
      const snap = await store.open('alice', plain);
      const chunks = await readChunks(await snap.read(snap.messages[0]!.id));
      assert.ok(chunks.length > 1, 'streamed, not one buffer');
      for (const c of chunks) assert.ok(c.length <= Math.max(BODY_READ_CHUNK, RETR_READ_CHUNK), `chunk of ${c.length} octets`);
      assert.ok(Buffer.concat(chunks).equals(big), 'byte-exact');
      await snap.release();
    });

    it('R-X6 a delivery whose source fails stores nothing', async () => {
      async function* failing(): AsyncIterable<Buffer> {
        yield Buffer.from('Subject: half\r\n');
        throw new Error('source broke');
      }
      await assert.rejects(store.deliver('alice', failing()));
      const snap = await store.open('alice', plain);
      assert.deepEqual(snap.messages, []);
      await snap.release();
    });

    it('R-K4 nothing is removed without commit', async () => {
      await deliverAll('alice', ['one\r\n', 'two\r\n']);
      const released = await store.open('alice', plain);
      await released.release();
      await store.open('alice', plain); // abandoned without commit or release (a dropped session)
      const snap = await store.open('alice', plain);
      assert.equal(snap.messages.length, 2);
      for (const m of snap.messages) assert.ok((await readAll(snap, m.id)).length > 0);
      await snap.release();
    });

    it('R-S11 commit is idempotent and removes only listed ids', async () => {
      await deliverAll('alice', ['1\r\n', '2\r\n', '3\r\n', '4\r\n']);
      const snap = await store.open('alice', plain);
      const [m1, m2, m3, m4] = snap.messages;
      const changes = { expunge: [m1!.id, m3!.id, 'no-such-id'], seen: [] };
      await snap.commit(changes);
      await snap.commit(changes); // repeated after a partial failure: harmless
      await snap.release();
      const after = await store.open('alice', plain);
      assert.deepEqual(after.messages, [m2, m4]);
      await after.release();
    });

    it('R-S11 commit never touches a message outside its snapshot', async () => {
      const s1 = await store.open('alice', plain);
      await deliverAll('alice', ['later\r\n']);
      const s2 = await store.open('alice', plain);
      const later = s2.messages[0]!;
      await s1.commit({ expunge: [later.id], seen: [later.id] });
      await s1.release();
      const s3 = await store.open('alice', plain);
      assert.deepEqual(s3.messages, [later]);
      await s2.release();
      await s3.release();
    });

    it('seen flag persists after commit, keeping uid, id and size', async () => {
      await deliverAll('alice', ['Subject: a\n\nread me\n', 'Subject: b\n\nnot yet\n']);
      const snap = await store.open('alice', plain);
      const [a, b] = snap.messages;
      assert.equal(a!.seen, false);
      await snap.commit({ expunge: [], seen: [a!.id] });
      await snap.commit({ expunge: [], seen: [a!.id] });
      await snap.release();
      const after = await store.open('alice', plain);
      assert.deepEqual(after.messages, [{ ...a!, seen: true }, b]);
      assert.equal((await readAll(after, a!.id)).toString(), 'Subject: a\n\nread me\n');
      await after.release();
    });

    it('R-S3 exclusive: a second exclusive open fails MAILBOX_LOCKED until release', async () => {
      const first = await store.open('alice', exclusive);
      await assert.rejects(store.open('alice', exclusive), storageError('MAILBOX_LOCKED'));
      await first.release();
      const second = await store.open('alice', exclusive);
      await second.release();
    });

    it('R-S3 exclusive: any open fails while an exclusive snapshot is held', async () => {
      const held = await store.open('alice', exclusive);
      await assert.rejects(store.open('alice', plain), storageError('MAILBOX_LOCKED'));
      await held.release();
      const plainAfter = await store.open('alice', plain);
      await plainAfter.release();
    });

    it('R-S3 exclusive: an exclusive open fails while another snapshot is open', async () => {
      const p1 = await store.open('alice', plain);
      const p2 = await store.open('alice', plain);
      await assert.rejects(store.open('alice', exclusive), storageError('MAILBOX_LOCKED'));
      await p2.release();
      await p2.release(); // a second release does not free p1's claim
      await assert.rejects(store.open('alice', exclusive), storageError('MAILBOX_LOCKED'));
      await p1.release();
      const ex = await store.open('alice', exclusive);
      await ex.release();
    });

    it('R-S3 exclusive: the lock is per mailbox and failed opens leave no claim', async () => {
      const a = await store.open('alice', exclusive);
      const b = await store.open('bob', exclusive);
      for (let i = 0; i < 3; i++) {
        await assert.rejects(store.open('alice', plain), storageError('MAILBOX_LOCKED'));
      }
      await a.release();
      await b.release();
      const again = await store.open('alice', exclusive);
      await again.release();
    });

    it('R-S3 a released snapshot can no longer read or commit', async () => {
      await deliverAll('alice', ['x\r\n']);
      const snap = await store.open('alice', plain);
      const id = snap.messages[0]!.id;
      await snap.release();
      await assert.rejects(snap.read(id), StorageError);
      await assert.rejects(openMessage(snap, id), StorageError);
      await assert.rejects(snap.commit({ expunge: [id], seen: [] }), StorageError);
      const after = await store.open('alice', plain);
      assert.equal(after.messages.length, 1, 'the late commit removed nothing');
      await after.release();
    });

    registerPolicyCases(() => store);
    registerHideCases(() => store);

    it('invalid mailbox names are rejected with INVALID_NAME', async () => {
      for (const bad of ['../x', 'a/b', '', '.hidden', 'a\0b', 'a\\b', '..']) {
        await assert.rejects(store.open(bad, plain), storageError('INVALID_NAME'), JSON.stringify(bad));
        await assert.rejects(store.deliver(bad, Buffer.from('x\r\n')), storageError('INVALID_NAME'));
        await assert.rejects(store.exists(bad), storageError('INVALID_NAME'));
        await assert.rejects(store.create(bad), storageError('INVALID_NAME'));
      }
    });
  });
}

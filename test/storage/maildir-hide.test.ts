/**
 * R-X12 `delete_mode = "hide"` on Maildir: a hidden message keeps its file, gets the Maildir
 * spec's `T` (trashed) flag that mutt and Dovecot show as deleted, and poplar never lists a file
 * with that flag, whichever program set it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';

const plain = { exclusive: false };

describe('R-X12 Maildir hide mode', () => {
  let dir: string;
  let root: string;
  let store: MaildirStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poplar-hide-'));
    root = join(dir, 'Maildir');
    store = new MaildirStore({ path: () => root });
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('R-X12 a hidden message keeps its file, renamed with the T flag (S too when retrieved)', async () => {
    for (const b of ['read then deleted\r\n', 'deleted unread\r\n', 'kept\r\n']) await store.deliver('alice', Buffer.from(b));
    const snap = await store.open('alice', plain);
    const [a, b, c] = snap.messages;
    await snap.commit({ expunge: [], seen: [a!.id], hide: [a!.id, b!.id] });
    await snap.release();
    const cur = (await readdir(join(root, 'cur'))).sort();
    assert.equal(cur.length, 3, 'no file was removed');
    const flagsOf = (id: string): string => cur.find((n) => n.startsWith(`${id}:2,`))!.slice(id.length + 3);
    assert.equal(flagsOf(a!.id), 'ST');
    assert.equal(flagsOf(b!.id), 'T');
    assert.equal(flagsOf(c!.id), '');
    const after = await store.open('alice', plain);
    assert.deepEqual(after.messages.map((m) => m.id), [c!.id]);
    await after.release();
  });

  it('R-X12 a file another program flagged T (mutt marking it deleted) is not listed', async () => {
    await store.deliver('alice', Buffer.from('one\r\n'));
    await store.deliver('alice', Buffer.from('two\r\n'));
    const snap = await store.open('alice', plain);
    const [one, two] = snap.messages;
    await snap.release();
    const name = (await readdir(join(root, 'cur'))).find((n) => n.startsWith(one!.id))!;
    await rename(join(root, 'cur', name), join(root, 'cur', `${one!.id}:2,ST`));
    await writeFile(join(root, 'new', '1700000000.M1P1.mutt:2,T'), 'Subject: trashed on arrival\r\n\r\n');
    const after = await store.open('alice', plain);
    assert.deepEqual(after.messages.map((m) => m.uid), [two!.uid]);
    await after.release();
    const back = (await readdir(join(root, 'cur'))).find((n) => n.startsWith(one!.id))!;
    await rename(join(root, 'cur', back), join(root, 'cur', `${one!.id}:2,S`)); // undeleted in mutt
    const again = await store.open('alice', plain);
    assert.deepEqual(again.messages.map((m) => m.uid), [one!.uid, two!.uid], 'listed again under its old uid');
    await again.release();
  });
});

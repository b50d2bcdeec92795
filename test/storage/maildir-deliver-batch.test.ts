/**
 * Group commit of Maildir deliveries (maildir-commit.ts): deliveries to one maildrop that arrive
 * while a commit runs share the next directory fsync and uidlist append. What must hold whatever
 * the batching: distinct uids that are never reused (R-S12), every acknowledged message visible
 * whole with its exact size, and a failed batch failing every member and leaving nothing (R-X6).
 */
import assert from 'node:assert/strict';
import { mkdtemp, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { MaildirStore, UIDLIST_LOCK_FILE } from '../../src/storage/maildir/maildir-store.js';
import { MaildropRegistry } from '../../src/storage/maildir/maildir-registry.js';
import type { MaildropHooks } from '../../src/storage/maildir/maildir-maildrop.js';
import { UIDLIST_FILE } from '../../src/storage/maildir/maildir-uidlist.js';
import { readAll, referenceCrlfSize } from './conformance.js';
import { MAILDIR_STORE_MODULE, runNode } from '../helpers/node-snippet.js';

const plain = { exclusive: false };


/** Distinct bodies of varied sizes, some with bare LFs so the CRLF size differs from the raw one. */
function body(tag: string, i: number): Buffer {
  const eol = i % 2 === 0 ? '\r\n' : '\n';
  return Buffer.from(`Subject: ${tag} ${i}${eol}${eol}${'x'.repeat(i * 37)}${eol}end${eol}`, 'latin1');
}

describe('Maildir group commit of deliveries', () => {
  let dir: string;
  let root: string;
  let store: MaildirStore;
  /** The store's maildrops call these (MaildropHooks); a test sets the one it needs. */
  let hooks: { commit?: MaildropHooks['commit'] };
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poplar-batch-'));
    root = join(dir, 'Maildir');
    hooks = {};
    const registry = new MaildropRegistry({ hooks: { commit: (r, size) => hooks.commit?.(r, size) } });
    store = new MaildirStore({ path: () => root, registry });
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('R-X6 R-S12 concurrent deliveries to one maildrop are committed in batches: distinct increasing uids, all visible with exact sizes', async () => {
    const batches: number[] = [];
    hooks.commit = (_root, size) => void batches.push(size);
    const messages = Array.from({ length: 24 }, (_, i) => body('batch', i));
    const results = await Promise.all(messages.map((m) => store.deliver('alice', m)));
    assert.ok(batches.length < messages.length, `fewer uidlist appends than deliveries (batches: ${batches.join(',')})`);
    assert.ok(batches.some((n) => n > 1), 'some batch held several deliveries');
    const uids = results.map((r) => r.uid);
    assert.deepEqual([...uids].sort((a, b) => a - b), Array.from({ length: messages.length }, (_, i) => i + 1), 'uids 1..n, each once');
    results.forEach((r, i) => assert.equal(r.size, referenceCrlfSize(messages[i]!), `delivery ${i} reports its exact size`));

    const snap = await store.open('alice', plain);
    assert.deepEqual(snap.messages.map((m) => m.uid), [...uids].sort((a, b) => a - b), 'every acknowledged message is listed');
    for (const [i, r] of results.entries()) {
      const info = snap.messages.find((m) => m.uid === r.uid)!;
      assert.equal(info.size, r.size, `LIST size of uid ${r.uid}`);
      const bytes = await readAll(snap, info.id);
      assert.ok(bytes.equals(messages[i]!), `uid ${r.uid} holds delivery ${i}, byte for byte`);
    }
    await snap.release();
    const later = await store.deliver('alice', body('later', 1));
    assert.equal(later.uid, messages.length + 1, 'the next uid follows the batch');
  });

  it('R-X6 R-S12 a sync failure in a batch fails every delivery in it, leaves nothing visible, and their uids are not reused', async () => {
    const first = await store.deliver('alice', body('kept', 0));
    assert.equal(first.uid, 1);
    // Fail every fdatasync(2) of the uidlist while armed (after the records were written).
    const probe = await open(join(dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
    await probe.close();
    const datasync = proto.datasync;
    let failures = 0;
    proto.datasync = async function () {
      failures++;
      throw Object.assign(new Error('EIO: injected fdatasync failure'), { code: 'EIO' });
    };
    // Pause the first delivery's batch so that the other two queue behind it as a second batch.
    let open_!: () => void;
    const gate = new Promise<void>((resolve) => (open_ = resolve));
    let paused = false;
    hooks.commit = () => {
      if (paused) return undefined;
      paused = true;
      return gate;
    };
    let outcomes;
    try {
      const pending = [0, 1, 2].map((i) => store.deliver('alice', body('lost', i)).then(
        () => 'acknowledged',
        (err: unknown) => (err as { code?: string }).code,
      ));
      while ((await readdir(join(root, 'new'))).length < 4) await sleep(2);
      open_();
      outcomes = await Promise.all(pending);
    } finally {
      open_();
      proto.datasync = datasync;
    }
    assert.deepEqual(outcomes, ['IO', 'IO', 'IO'], 'every delivery of the failed batches is refused');
    assert.equal(failures, 2, 'two batches: the first delivery alone, then the two that queued behind it');
    assert.equal((await readdir(join(root, 'new'))).length, 1, 'only the acknowledged message is in new/');
    assert.deepEqual(await readdir(join(root, 'tmp')), [], 'nothing left in tmp/');

    const next = await store.deliver('alice', body('after', 0));
    assert.equal(next.uid, 5, 'uids 2-4 were written before the failed syncs: they stay used');
    const snap = await store.open('alice', plain);
    assert.deepEqual(snap.messages.map((m) => m.uid), [1, 5]);
    await snap.release();
  });

  it('R-S12 the uidlist handle kept open between appends notices a rewrite by another process', async () => {
    assert.equal((await store.deliver('alice', body('a', 1))).uid, 1);
    assert.equal((await store.deliver('alice', body('b', 2))).uid, 2);
    // Another process compacts: a new file with a higher next uid is renamed over the old one.
    const path = join(root, UIDLIST_FILE);
    const records = (await readFile(path, 'utf8')).split('\n').slice(1).join('\n');
    await writeFile(`${path}.other`, `poplar-uidlist 1 next=100 gen=0123456789ab\n${records}`);
    await rename(`${path}.other`, path);
    const c = await store.deliver('alice', body('c', 3));
    assert.equal(c.uid, 100, 'the new file decides the next uid');
    const lines = (await readFile(path, 'utf8')).split('\n');
    assert.ok(lines.some((l) => l.startsWith('100 ')), 'the record went into the new file, not the replaced one');
    const snap = await store.open('alice', plain);
    assert.deepEqual(snap.messages.map((m) => m.uid), [1, 2, 100]);
    await snap.release();
  });

  it('the uidlist lock kept after a delivery batch is released soon after the last one', async () => {
    await store.deliver('alice', body('one', 1));
    const lock = join(root, UIDLIST_LOCK_FILE);
    const deadline = Date.now() + 2000;
    while ((await readdir(root)).includes(UIDLIST_LOCK_FILE) && Date.now() < deadline) await sleep(5);
    await assert.rejects(readFile(lock), { code: 'ENOENT' }, 'released without another delivery');
  });

  it('R-S12 a process delivering without pause still lets another process take the uidlist lock in turn', async () => {
    await store.create('alice');
    let stop = false;
    const mine: number[] = [];
    const loop = (async () => {
      const until = Date.now() + 4000;
      while (!stop && Date.now() < until) mine.push((await store.deliver('alice', body('busy', mine.length % 7))).uid);
    })();
    await sleep(100);
    // The child gives up after 1.5 s: it gets in only if the lock is not kept for ever.
    const child = runNode(`
      const { MaildirStore } = await import(${JSON.stringify(MAILDIR_STORE_MODULE)});
      const store = new MaildirStore({ path: () => ${JSON.stringify(root)}, lockWaitMs: 1500 });
      const out = [];
      for (let i = 0; i < 5; i++) out.push((await store.deliver('alice', Buffer.from('child ' + i + '\\r\\n'))).uid);
      await store.close();
      console.log(JSON.stringify(out));`).then((s) => JSON.parse(s) as number[]);
    const theirs = await child.finally(() => (stop = true));
    await loop;
    assert.equal(theirs.length, 5);
    assert.equal(new Set([...mine, ...theirs]).size, mine.length + 5, 'no uid handed out twice');
  });

  it('R-S12 uids stay unique while another process delivers to the same maildrop at the same time', async () => {
    await store.create('alice');
    const child = runNode(`
      const { MaildirStore } = await import(${JSON.stringify(MAILDIR_STORE_MODULE)});
      const store = new MaildirStore({ path: () => ${JSON.stringify(root)} });
      const out = [];
      for (let round = 0; round < 4; round++) {
        out.push(...await Promise.all(Array.from({ length: 10 }, (_, i) =>
          store.deliver('alice', Buffer.from('child ' + round + ' ' + i + '\\r\\n')))));
      }
      console.log(JSON.stringify(out.map((d) => d.uid)));`).then((s) => JSON.parse(s) as number[]);
    const local: number[] = [];
    for (let round = 0; round < 4; round++) {
      const got = await Promise.all(Array.from({ length: 10 }, (_, i) => store.deliver('alice', body(`local ${round}`, i))));
      local.push(...got.map((d) => d.uid));
    }
    const uids = [...(await child), ...local];
    assert.equal(new Set(uids).size, 80, 'no uid handed out twice');
    const snap = await store.open('alice', plain);
    assert.deepEqual(snap.messages.map((m) => m.uid), [...uids].sort((a, b) => a - b), 'all 80 listed under the uids they were given');
    await snap.release();
  });
});

/**
 * Maildir-only behaviour: sharing the directory with other programs (an MTA dropping files into
 * new/, mutt renaming them), with other poplar processes, and surviving crashes (stale locks,
 * a torn uidlist).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rename, rm, unlink, utimes, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { MaildropSnapshot, MessageInfo } from '../../src/storage/mail-store.js';
import { LOCK_HOST } from '../../src/storage/file-lock.js';
import { MaildirStore, SESSION_LOCK_FILE, UIDLIST_LOCK_FILE } from '../../src/storage/maildir/maildir-store.js';
import { UIDLIST_FILE } from '../../src/storage/maildir/maildir-uidlist.js';
import { readAll, referenceCrlfSize, storageError } from './conformance.js';
import { MAILDIR_STORE_MODULE, runNode } from '../helpers/node-snippet.js';

const plain = { exclusive: false };


/** A pid that belonged to a process which has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.on('close', resolve));
  return child.pid!;
}

describe('Maildir interoperability', () => {
  let dir: string;
  let root: string;
  let store: MaildirStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poplar-interop-'));
    root = join(dir, 'Maildir');
    store = new MaildirStore({ path: () => root });
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The maildrop as a fresh process sees it: proves what is on disk, not in this process's cache. */
  async function openInOtherProcess(): Promise<MessageInfo[]> {
    const out = await runNode(`
      const { MaildirStore } = await import(${JSON.stringify(MAILDIR_STORE_MODULE)});
      const snap = await new MaildirStore({ path: () => ${JSON.stringify(root)} }).open('alice', { exclusive: false });
      console.log(JSON.stringify(snap.messages));`);
    return JSON.parse(out) as MessageInfo[];
  }

  async function uidlistRecords(): Promise<string[]> {
    const text = await readFile(join(root, UIDLIST_FILE), 'utf8');
    return text.split('\n').slice(1).filter((l) => l !== '');
  }

  it('R-X7 R-S4 R-S12 files another program drops into new/ get new uids and exact sizes', async () => {
    const mine = await store.deliver('alice', Buffer.from('Subject: mine\r\n\r\nx\r\n'));
    const bodies = ['Subject: crlf\r\n\r\nbody\r\n', 'Subject: bare lf\n\nbody\n', 'Subject: none\r\n\r\nbody'];
    // Names whose leading <sec> order differs from their text order, with ties broken by name.
    const names = ['999999999.A.mx', '1700000003.M1P1.mx', '1700000001.M9P1.mx', '1700000002.M5P1.mx',
      '1700000001.M10P1.mx', '1600000000.Z.mx', 'weird-name', '1700000002.M5P0.mx'];
    const order = [0, 5, 4, 2, 7, 3, 1, 6].map((i) => names[i]!);
    const dropped: [string, string][] = names.map((n, i) => [n, bodies[i % 3]!]);
    for (const [name, body] of dropped) await writeFile(join(root, 'new', name), body, 'latin1');
    await writeFile(join(root, 'new', '.hidden'), 'not a message\n');
    await writeFile(join(root, 'tmp', '1700000004.M1P1.mx'), 'still being written\n');

    const snap = await store.open('alice', plain);
    assert.equal(snap.messages.length, 1 + names.length);
    assert.equal(snap.messages[0]!.uid, mine.uid);
    // First seen together: uids in the order of the names' delivery time.
    const byTime = order.map((n) => dropped.find(([d]) => d === n)!);
    assert.deepEqual(snap.messages.slice(1).map((m) => m.id), byTime.map(([n]) => n));
    for (const [i, m] of snap.messages.slice(1).entries()) {
      assert.equal(m.uid, mine.uid + 1 + i);
      assert.equal(m.size, referenceCrlfSize(Buffer.from(byTime[i]![1], 'latin1')));
      assert.equal((await readAll(snap, m.id)).toString('latin1'), byTime[i]![1]);
    }
    await snap.release();
    assert.deepEqual((await readdir(join(root, 'new'))).sort(), ['.hidden']);
    const cur = (await readdir(join(root, 'cur'))).sort();
    assert.deepEqual(cur.filter((n) => !n.includes(',S=')), byTime.map(([n]) => `${n}:2,`).sort());
    assert.deepEqual(await openInOtherProcess(), snap.messages);
  });

  it('R-S4 R-S12 a name reused after poplar removed its message gets a new uid and its own size', async () => {
    // Regression: the uidlist kept the removed message's record, so a new file under the same
    // base name came back with the old uid (clients that had seen it skipped the new mail) and
    // the old size (LIST and RETR disagreed).
    const name = '1700000000.P1.host';
    await store.create('alice');
    await writeFile(join(root, 'new', name), 'Subject: first\r\n\r\nfirst body, rather longer than the second\r\n');
    const a = await store.open('alice', plain);
    assert.equal(a.messages.length, 1);
    const old = a.messages[0]!;
    await a.commit({ expunge: [old.id], seen: [] });
    await a.release();
    const second = 'Subject: second\r\n\r\nshort\r\n';
    await writeFile(join(root, 'new', name), second);
    for (const messages of [(await store.open('alice', plain)).messages, await openInOtherProcess()]) {
      assert.equal(messages.length, 1);
      assert.ok(messages[0]!.uid > old.uid, `uid ${messages[0]!.uid} must be new (old ${old.uid})`);
      assert.equal(messages[0]!.size, Buffer.byteLength(second));
    }
  });

  it('R-X7 R-S12 a file renamed by mutt between sessions keeps its uid', async () => {
    const a = await store.deliver('alice', Buffer.from('a\r\n'));
    const b = await store.deliver('alice', Buffer.from('b\r\n'));
    const first = await store.open('alice', plain);
    await first.release();
    const c = await store.deliver('alice', Buffer.from('c\r\n')); // still in new/
    const [curA] = (await readdir(join(root, 'cur'))).filter((n) => n.startsWith(first.messages[0]!.id));
    await rename(join(root, 'cur', curA!), join(root, 'cur', curA!.replace(/:2,$/, ':2,RS')));
    const [newC] = await readdir(join(root, 'new'));
    await rename(join(root, 'new', newC!), join(root, 'cur', `${newC}:2,S`));

    const snap = await store.open('alice', plain);
    assert.deepEqual(
      snap.messages.map((m) => [m.uid, m.seen]),
      [[a.uid, true], [b.uid, false], [c.uid, true]],
    );
    assert.equal((await readAll(snap, snap.messages[2]!.id)).toString(), 'c\r\n');
    await snap.release();
  });

  it('R-S3 a file renamed after open still reads and commits; flags stay sorted', async () => {
    await store.deliver('alice', Buffer.from('first\r\n'));
    await store.deliver('alice', Buffer.from('second\r\n'));
    const snap = await store.open('alice', plain);
    const [m1, m2] = snap.messages;
    await rename(join(root, 'cur', `${m1!.id}:2,`), join(root, 'cur', `${m1!.id}:2,RF`));
    await rename(join(root, 'cur', `${m2!.id}:2,`), join(root, 'cur', `${m2!.id}:2,T`));
    assert.equal((await readAll(snap, m1!.id)).toString(), 'first\r\n');
    await snap.commit({ expunge: [m2!.id], seen: [m1!.id] });
    await snap.release();
    assert.deepEqual(await readdir(join(root, 'cur')), [`${m1!.id}:2,FRS`]);
  });

  it('R-S3 read rejects at once when another program removed the file', async () => {
    await store.deliver('alice', Buffer.from('x\r\n'));
    const snap = await store.open('alice', plain);
    await unlink(join(root, 'cur', `${snap.messages[0]!.id}:2,`));
    await assert.rejects(snap.read(snap.messages[0]!.id), storageError('MESSAGE_GONE'));
    await snap.commit({ expunge: [snap.messages[0]!.id], seen: [] });
    await snap.release();
  });

  it('R-S12 concurrent opens and deliveries assign each file exactly one uid', async () => {
    let delivering = true;
    const deliveries = Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        store.deliver('alice', Buffer.from(`Subject: ${i}\r\n\r\nbody ${i}\r\n`)),
      ),
    ).finally(() => (delivering = false));
    // 20 sessions opening in parallel, again and again while the deliveries are under way, so
    // opens see files in new/ before their delivery has recorded a uid.
    const snapshots: MaildropSnapshot[] = [];
    const sessions = Array.from({ length: 20 }, async () => {
      do snapshots.push(await store.open('alice', plain));
      while (delivering);
    });
    const [delivered] = await Promise.all([deliveries, ...sessions]);
    const final = await store.open('alice', plain);
    const uidOf = new Map(final.messages.map((m) => [m.id, m.uid]));
    assert.equal(final.messages.length, 50);
    assert.equal(uidOf.size, 50);
    assert.equal(new Set(uidOf.values()).size, 50, 'no two messages share a uid');
    assert.deepEqual([...uidOf.values()].sort((x, y) => x - y), delivered.map((d) => d.uid).sort((x, y) => x - y));
    for (const snap of snapshots) {
      for (const m of snap.messages) assert.equal(m.uid, uidOf.get(m.id), 'same uid in every snapshot');
      await snap.release();
    }
    const keys = (await uidlistRecords()).map((line) => line.split(' ')[2]);
    assert.equal(new Set(keys).size, keys.length, 'one uidlist record per file');
    await final.release();
    assert.deepEqual(await openInOtherProcess(), final.messages);
  });

  it('R-S12 a delivery an open saw before it recorded its uid keeps one uid', async () => {
    await store.create('alice');
    const lock = join(root, UIDLIST_LOCK_FILE);
    // Held by a live process: the delivery below renames its file into new/, then waits.
    await writeFile(lock, `${process.ppid} ${LOCK_HOST} ${Date.now()} cafe\n`);
    const child = runNode(`
      const { MaildirStore } = await import(${JSON.stringify(MAILDIR_STORE_MODULE)});
      const store = new MaildirStore({ path: () => ${JSON.stringify(root)} });
      console.log((await store.deliver('alice', Buffer.from('raced\\r\\n'))).uid);`);
    while ((await readdir(join(root, 'new'))).length === 0) await sleep(5);
    await sleep(300); // the child is now polling the lock at its longest backoff (~100 ms)
    await unlink(lock); // so this process's open very likely takes the lock first
    const snap = await store.open('alice', plain);
    const childUid = Number(await child);
    assert.deepEqual(snap.messages.map((m) => m.uid), [childUid]);
    assert.equal((await uidlistRecords()).length, 1);
    await snap.release();
  });

  it('R-S12 deliveries from several processes get distinct uids', async () => {
    await store.create('alice');
    const child = (tag: string) =>
      runNode(`
        const { MaildirStore } = await import(${JSON.stringify(MAILDIR_STORE_MODULE)});
        const store = new MaildirStore({ path: () => ${JSON.stringify(root)} });
        const out = await Promise.all(Array.from({ length: 15 }, (_, i) =>
          store.deliver('alice', Buffer.from('${tag} ' + i + '\\r\\n'))));
        console.log(JSON.stringify(out.map((d) => d.uid)));`).then((s) => JSON.parse(s) as number[]);
    const [x, y, z, local] = await Promise.all([
      child('x'),
      child('y'),
      child('z'),
      Promise.all(Array.from({ length: 15 }, (_, i) => store.deliver('alice', Buffer.from(`w ${i}\r\n`)))),
    ]);
    const uids = [...x, ...y, ...z, ...local.map((d) => d.uid)];
    assert.equal(new Set(uids).size, 60);
    const snap = await store.open('alice', plain);
    assert.deepEqual(snap.messages.map((m) => m.uid), [...uids].sort((a, b) => a - b));
    await snap.release();
  });

  it('a stale uidlist lock left by a dead process is broken', async () => {
    await store.create('alice');
    const lock = join(root, UIDLIST_LOCK_FILE);
    await writeFile(lock, `${await deadPid()} ${LOCK_HOST} ${Date.now()} deadbeef\n`);
    const quick = new MaildirStore({ path: () => root, lockWaitMs: 1000 });
    assert.equal((await quick.deliver('alice', Buffer.from('a\r\n'))).uid, 1);
    assert.match(await readFile(lock, 'utf8'), new RegExp(`^${process.pid} `), 'ours now, kept briefly for the next delivery');
    await quick.close(); // releases the kept lock
    await assert.rejects(readFile(lock), { code: 'ENOENT' });

    // Another host's lock: live while fresh, stale once not refreshed for 30 s.
    await writeFile(lock, `1 elsewhere.example 0 cafe\n`);
    const impatient = new MaildirStore({ path: () => root, lockWaitMs: 100 });
    await assert.rejects(impatient.deliver('alice', Buffer.from('b\r\n')), storageError('IO'));
    assert.equal((await readdir(join(root, 'new'))).length, 1, 'the unacknowledged message was withdrawn');
    assert.equal((await readFile(lock, 'utf8')).startsWith('1 elsewhere'), true, 'a live lock is kept');
    const old = new Date(Date.now() - 60_000);
    await utimes(lock, old, old);
    assert.equal((await quick.deliver('alice', Buffer.from('c\r\n'))).uid, 2);
    assert.deepEqual(await readdir(join(root, 'tmp')), [], 'the failed delivery left nothing');
  });

  it('R-S3 exclusive: a session lock of a dead process is broken, a live one is honoured', async () => {
    await store.create('alice');
    const lock = join(root, SESSION_LOCK_FILE);
    await writeFile(lock, `${await deadPid()} ${LOCK_HOST} ${Date.now()} deadbeef\n`);
    const ex = await store.open('alice', { exclusive: true });
    assert.match(await readFile(lock, 'utf8'), new RegExp(`^${process.pid} `));
    await ex.release();
    await assert.rejects(readFile(lock), { code: 'ENOENT' });

    // Held by another live process (the test runner that started this one).
    await writeFile(lock, `${process.ppid} ${LOCK_HOST} ${Date.now()} cafe\n`);
    await assert.rejects(store.open('alice', plain), storageError('MAILBOX_LOCKED'));
    await assert.rejects(store.open('alice', { exclusive: true }), storageError('MAILBOX_LOCKED'));
    // Our own pid with a token this process does not hold: a previous process's (pid reuse).
    await writeFile(lock, `${process.pid} ${LOCK_HOST} ${Date.now()} cafe\n`);
    const again = await store.open('alice', { exclusive: true });
    await again.release();
  });

  it('a torn poplar-uidlist (last line partial, as after a crash) is tolerated', async () => {
    const a = await store.deliver('alice', Buffer.from('a\r\n'));
    const b = await store.deliver('alice', Buffer.from('b\r\n'));
    await appendFile(join(root, UIDLIST_FILE), `99 12 1700000000.M1P${'9'.repeat(200)}`);
    await writeFile(join(root, 'new', '1700000000.M2P2.mx'), 'dropped\n');
    const snap = await store.open('alice', plain);
    assert.deepEqual(snap.messages.map((m) => m.uid), [a.uid, b.uid, b.uid + 1]);
    await snap.release();
    const text = await readFile(join(root, UIDLIST_FILE), 'utf8');
    assert.equal(text.includes('99 12'), false, 'the torn line was cut off');
    assert.equal(text.endsWith('\n'), true, 'nothing torn is left behind');
    assert.equal((await store.deliver('alice', Buffer.from('c\r\n'))).uid, b.uid + 2);
    assert.deepEqual(
      (await openInOtherProcess()).map((m) => m.uid),
      [a.uid, b.uid, b.uid + 1, b.uid + 2],
    );
  });

  it('R-S12 compaction drops dead records but never lowers the next uid', async () => {
    const delivered = [];
    for (let i = 0; i < 40; i++) delivered.push(await store.deliver('alice', Buffer.from(`${i}\r\n`)));
    const snap = await store.open('alice', plain);
    await snap.commit({ expunge: snap.messages.slice(2).map((m) => m.id), seen: [] });
    await snap.release();
    const records = await uidlistRecords();
    assert.equal(records.filter((l) => /^\d/.test(l)).length, 40, 'entries stay until a compaction');
    assert.equal(records.filter((l) => l.startsWith('D ')).length, 38, 'each removal is recorded');
    const compacting = await store.open('alice', plain);
    await compacting.release();
    assert.deepEqual((await uidlistRecords()).map((l) => Number(l.split(' ')[0])), [1, 2]);
    assert.equal((await store.deliver('alice', Buffer.from('next\r\n'))).uid, 41);
    assert.deepEqual((await openInOtherProcess()).map((m) => m.uid), [1, 2, 41]);
    assert.equal(delivered.at(-1)!.uid, 40);
  });

  it('R-X7 new file names follow the Maildir spec, with the host encoded and both sizes', async () => {
    const named = new MaildirStore({ path: () => root, hostname: 'mx/1:a', now: () => 1700000000123.456 });
    const { size } = await named.deliver('alice', Buffer.from('a\nb\n'));
    const [name] = await readdir(join(root, 'new'));
    assert.match(name!, /^1700000000\.M123456P\d+Q\d+\.mx\\0571\\072a,S=4,W=6$/);
    assert.equal(size, 6);
  });

  it('R-S4 a ,W= size in a name is trusted without reading the file (Dovecot convention)', async () => {
    await store.create('alice');
    await writeFile(join(root, 'new', '1700000000.M1P1.mx,S=5,W=999'), 'hello');
    const snap = await store.open('alice', plain);
    assert.equal(snap.messages[0]!.size, 999);
    await snap.release();
  });
});

/**
 * The Maildir listing cache (maildir-listing.ts), the bulk first sight (maildir-bulk.ts) and the
 * session marker shared by a process's snapshots (maildir-sessions.ts): a cached listing is
 * shared while nothing changed, and every change made by another program, another session or
 * another process is seen by the next open. Stores here use a dirty window of 0 so that a
 * listing is trusted at once; `pastTick` then waits (a condition, not a duration) until a change
 * made now gets a ctime different from the stamped one, as the window guarantees in production.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { crlfSize } from '../../src/protocol/crlf.js';
import { BULK_MIN, COLD_BULK_MIN, WORKER_IDLE_MS, bulkPool } from '../../src/storage/maildir/maildir-bulk.js';
import type { MaildirScan } from '../../src/storage/maildir/maildir-dir.js';
import { buildListing } from '../../src/storage/maildir/maildir-listing.js';
import { MARKER_LINGER_MS } from '../../src/storage/maildir/maildir-sessions.js';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import { MaildropRegistry } from '../../src/storage/maildir/maildir-registry.js';
import { UidList } from '../../src/storage/maildir/maildir-uidlist.js';
import { readAll, storageError } from './conformance.js';
import { MAILDIR_STORE_MODULE, runNode } from '../helpers/node-snippet.js';
import { waitFor } from '../helpers/wait.js';

const plain = { exclusive: false };


describe('Maildir listing cache', () => {
  let dir: string;
  let root: string;
  let store: MaildirStore;
  let registry: MaildropRegistry;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poplar-listing-'));
    root = join(dir, 'Maildir');
    registry = new MaildropRegistry();
    store = new MaildirStore({ path: () => root, dirtyWindowMs: 0, registry });
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * Waits until a change made now gets a ctime after new/'s and cur/'s, and the clock is past
   * them: the state the dirty window ensures before a listing is trusted.
   */
  async function pastTick(): Promise<void> {
    const probe = join(dir, 'probe');
    for (;;) {
      const [n, c] = await Promise.all([stat(join(root, 'new'), { bigint: true }), stat(join(root, 'cur'), { bigint: true })]);
      const last = n.ctimeNs > c.ctimeNs ? n.ctimeNs : c.ctimeNs;
      await writeFile(probe, 'x');
      const p = await stat(probe, { bigint: true });
      if (p.ctimeNs > last && BigInt(Date.now()) * 1_000_000n > last + 1_000_000n) return;
    }
  }

  /**
   * Opens twice with nothing changed between: the second open must reuse the first's listing.
   * A first open moves delivered files out of new/ (a change right before its own listing, so
   * that listing is not trusted); the one after a tick lists a settled maildir.
   */
  async function openCached() {
    await (await store.open('alice', plain)).release();
    await pastTick();
    const first = await store.open('alice', plain);
    const second = await store.open('alice', plain);
    assert.equal(second.list, first.list, 'the listing is shared, not rebuilt');
    await first.release();
    return second;
  }

  async function deliver(n: number): Promise<void> {
    for (let i = 0; i < n; i++) await store.deliver('alice', Buffer.from(`message ${i}\r\n`));
  }

  it('R-X7 R-S4 R-S12 a file dropped into new/ by another program after a cached open is seen by the next open', async () => {
    await deliver(2);
    const before = await openCached();
    await before.release();
    await pastTick();
    await writeFile(join(root, 'new', '1700000000.M1P1.mta'), 'bare\nline ends\n');
    const after = await store.open('alice', plain);
    assert.notEqual(after.list, before.list);
    assert.equal(after.messages.length, 3);
    const dropped = after.messages.find((m) => m.id === '1700000000.M1P1.mta')!;
    assert.equal(dropped.size, crlfSize(Buffer.from('bare\nline ends\n')));
    assert.equal(dropped.uid, 3);
    await after.release();
  });

  it('R-X7 R-X12 a file renamed (trashed) or removed in cur/ by another program after a cached open is seen by the next open', async () => {
    await deliver(3);
    const before = await openCached();
    const [m1, m2, m3] = before.messages;
    await before.release();
    await pastTick();
    await rename(join(root, 'cur', `${m1!.id}:2,`), join(root, 'cur', `${m1!.id}:2,T`));
    let after = await store.open('alice', plain);
    assert.deepEqual(after.messages.map((m) => m.id), [m2!.id, m3!.id], 'a trashed file is hidden');
    await after.release();
    // the same again for a removal, once the rescan's listing is cached
    await openCached().then((s) => s.release());
    await pastTick();
    await unlink(join(root, 'cur', `${m2!.id}:2,`));
    after = await store.open('alice', plain);
    assert.deepEqual(after.messages.map((m) => m.id), [m3!.id]);
    await after.release();
  });

  it('R-S12 a delivery by another process after a cached open is seen by the next open', async () => {
    await deliver(1);
    const before = await openCached();
    await before.release();
    await pastTick();
    await runNode(`
      const { MaildirStore } = await import(${JSON.stringify(MAILDIR_STORE_MODULE)});
      await new MaildirStore({ path: () => ${JSON.stringify(root)} }).deliver('alice', Buffer.from('from afar\\r\\n'));`);
    const after = await store.open('alice', plain);
    assert.deepEqual(after.messages.map((m) => m.uid), [1, 2]);
    await after.release();
  });

  it('a listing of a directory changed within the dirty window is used once and not reused', async () => {
    const wary = new MaildirStore({ path: () => root, dirtyWindowMs: 3_600_000 });
    await deliver(2);
    const a = await wary.open('alice', plain);
    const b = await wary.open('alice', plain);
    assert.notEqual(b.list, a.list, 'every open lists again while the maildir is dirty');
    assert.deepEqual(b.messages, a.messages);
    await a.release();
    await b.release();
  });

  it('the dirty window: recent ctimes are not trusted, whole-second ctimes get the coarse window', () => {
    const stamp = (ms: number, nsPart = 123_456n) => ({ ino: 1, ctimeMs: ms + Number(nsPart) / 1e6 });
    const scan = (ctimeMs: number, at: number, nsPart?: bigint): MaildirScan => ({
      found: new Map(),
      sized: new Map(),
      newStamp: stamp(ctimeMs, nsPart),
      curStamp: stamp(ctimeMs, nsPart),
      newAt: at,
      curAt: at,
    });
    const uidlist = new UidList(join(tmpdir(), 'poplar-no-such-uidlist'));
    const t = 1_763_726_400_000;
    assert.equal(buildListing(scan(t, t + 50), uidlist, 100, true).trusted, false, 'changed 50 ms before the scan');
    assert.equal(buildListing(scan(t, t + 150), uidlist, 100, true).trusted, true, 'changed 150 ms before the scan');
    assert.equal(buildListing(scan(t, t + 150), uidlist, 100, false).trusted, false, 'a file moved during the scan');
    assert.equal(buildListing(scan(t, t + 1500, 0n), uidlist, 100, true).trusted, false, 'a whole-second ctime, 1.5 s old');
    assert.equal(buildListing(scan(t, t + 2500, 0n), uidlist, 100, true).trusted, true, 'a whole-second ctime, 2.5 s old');
  });

  it('R-S3 R-K4 a commit by one session is seen by the next open; a session sharing the old listing still works', async () => {
    await deliver(3);
    const a = await openCached();
    const b = await store.open('alice', plain);
    assert.equal(b.list, a.list);
    const [m1, m2, m3] = a.messages;
    await a.commit({ expunge: [m2!.id], seen: [m1!.id] });
    await a.release();
    const c = await store.open('alice', plain);
    assert.deepEqual(
      c.messages.map((m) => [m.uid, m.seen]),
      [
        [m1!.uid, true],
        [m3!.uid, false],
      ],
    );
    // b keeps its snapshot (R-S3): m1 is found under its new name, m2 is gone.
    assert.equal(b.messages.length, 3);
    assert.equal((await readAll(b, m1!.id)).toString(), 'message 0\r\n');
    await assert.rejects(b.read(m2!.id), storageError('MESSAGE_GONE'));
    await b.release();
    await c.release();
  });

  it('R-S3 two sessions sharing a listing keep their own relocations and never change the shared paths', async () => {
    await deliver(2);
    const a = await openCached();
    const b = await store.open('alice', plain);
    const shared = registry.get(root).cachedListing!;
    assert.equal(shared.list, a.list);
    assert.equal(b.list, a.list, 'both sessions have the one cached listing');
    const [m1, m2] = a.messages;
    const pathsOf = (): (string | undefined)[] => a.messages.map((m) => shared.path(m.id));
    const original = pathsOf();
    // Another program changes m2's flags; a marks m1 seen.
    await rename(join(root, 'cur', `${m2!.id}:2,`), join(root, 'cur', `${m2!.id}:2,F`));
    await a.commit({ expunge: [], seen: [m1!.id] });
    assert.equal((await readAll(a, m2!.id)).toString(), 'message 1\r\n');
    assert.equal((await readAll(b, m1!.id)).toString(), 'message 0\r\n');
    assert.equal((await readAll(b, m2!.id)).toString(), 'message 1\r\n');
    await b.commit({ expunge: [], seen: [m2!.id] });
    assert.deepEqual(pathsOf(), original, 'the shared listing is never mutated');
    await a.release();
    await b.release();
    assert.deepEqual((await readdir(join(root, 'cur'))).sort(), [`${m1!.id}:2,S`, `${m2!.id}:2,FS`].sort());
  });

  it('R-S4 R-S12 a first sight of many files (worker pool) moves them to cur/ with exact sizes and ordered uids', async () => {
    await store.create('alice');
    const n = COLD_BULK_MIN + 3; // enough for the workers even when none runs yet
    const bodies = new Map<string, Buffer>();
    for (let i = 0; i < n; i++) {
      const name = `${1700000000 + i}.M${i}P1.mta`;
      // LF, CRLF, bare CR, no final line end, empty, and more than one 64 KiB read
      const kinds = ['a\nb\n', 'a\r\nb\r\n', 'a\rb\r', 'no end', '', `${'x'.repeat(70)}\n`.repeat(2000) + 'tail\r'];
      const body = Buffer.from(`${i}:${kinds[i % kinds.length]!}`);
      bodies.set(name, body);
      await writeFile(join(root, 'new', name), body);
    }
    const snap = await store.open('alice', plain);
    assert.equal(snap.messages.length, n);
    snap.messages.forEach((m, i) => {
      assert.equal(m.uid, i + 1);
      assert.equal(m.id, `${1700000000 + i}.M${i}P1.mta`);
      assert.equal(m.size, crlfSize(bodies.get(m.id)!), m.id);
    });
    assert.deepEqual(await readdir(join(root, 'new')), []);
    assert.equal((await readdir(join(root, 'cur'))).length, n);
    await snap.release();
  });

  it('the first-sight worker threads end once idle; a later big first sight starts them again, a small one does not', async () => {
    bulkPool.idleMs = 100;
    try {
      const firstSight = async (mailbox: string, n: number): Promise<void> => {
        await store.create(mailbox);
        const mroot = join(dir, mailbox);
        for (let i = 0; i < n; i++) await writeFile(join(mroot, 'new', `${1700000000 + i}.M${i}P1.mta`), `${i}\n`);
        const snap = await store.open(mailbox, plain);
        assert.equal(snap.messages.length, n);
        assert.ok(snap.messages.every((m, i) => m.size === `${i}\r\n`.length));
        await snap.release();
      };
      const idle = (): Promise<void> => waitFor(() => bulkPool.workers === 0, 10_000);
      await store.close();
      store = new MaildirStore({ path: (m) => join(dir, m), dirtyWindowMs: 0 }); // closed by afterEach
      // Counted as started rather than seen running: with an idle time this short, they may
      // already have ended by the time open() and release() return.
      await idle();
      let started = bulkPool.started;
      await firstSight('bob', COLD_BULK_MIN);
      assert.ok(bulkPool.started > started, 'a first sight of COLD_BULK_MIN files runs on workers');
      await idle();
      started = bulkPool.started;
      await firstSight('carol', BULK_MIN);
      assert.equal(bulkPool.started, started, 'BULK_MIN files are not worth starting them for');
      await firstSight('dave', COLD_BULK_MIN);
      assert.ok(bulkPool.started > started, 'started again');
      await idle();
    } finally {
      bulkPool.idleMs = WORKER_IDLE_MS;
    }
  });
});

describe('Maildir session marker shared by a process', () => {
  let dir: string;
  let root: string;
  let store: MaildirStore;
  /** Awaited by this store's expiries while they hold the expire lock (MaildropHooks.expiring). */
  let whileExpiring: (() => Promise<void>) | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poplar-marker-'));
    root = join(dir, 'Maildir');
    whileExpiring = undefined;
    const registry = new MaildropRegistry({ hooks: { expiring: () => whileExpiring?.() } });
    store = new MaildirStore({ path: () => root, registry });
    for (let i = 0; i < 2; i++) await store.deliver('alice', Buffer.from(`m${i}\r\n`));
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const markers = async (): Promise<string[]> => (await readdir(root)).filter((n) => n.startsWith('poplar-session.'));
  const expireElsewhere = async (): Promise<{ inUse: boolean; removed: unknown[] }> =>
    JSON.parse(
      await runNode(`
        const { MaildirStore } = await import(${JSON.stringify(MAILDIR_STORE_MODULE)});
        const r = await new MaildirStore({ path: () => ${JSON.stringify(root)} }).expire('alice', () => true);
        console.log(JSON.stringify(r));`),
    );

  it('R-S18 R-S3 one marker covers all snapshots of a process; expire in another process waits for the last release', async () => {
    const a = await store.open('alice', plain);
    const b = await store.open('alice', plain);
    assert.equal((await markers()).length, 1, 'one marker per maildrop and process');
    await a.release();
    assert.equal((await markers()).length, 1, 'kept while a snapshot is open');
    assert.deepEqual(await expireElsewhere(), { inUse: true, removed: [] });
    const c = await store.open('alice', plain);
    await b.release();
    assert.deepEqual(await expireElsewhere(), { inUse: true, removed: [] });
    await c.release();
    assert.equal((await markers()).length, 1, 'lingers after the last release (MARKER_LINGER_MS)');
    assert.deepEqual(await expireElsewhere(), { inUse: true, removed: [] }, 'another process cannot tell it from a live one');
    const own = await store.expire('alice', () => true, { dryRun: true });
    assert.equal(own.inUse, false, "this process's expiry ignores its own idle marker");
    assert.equal(own.removed.length, 2);
    await store.close();
    assert.deepEqual(await markers(), [], 'removed at close');
    const r = await expireElsewhere();
    assert.equal(r.inUse, false);
    assert.equal(r.removed.length, 2);
  });

  it('R-S3 exclusive opens still exclude every other snapshot with a shared marker', async () => {
    const a = await store.open('alice', plain);
    await assert.rejects(store.open('alice', { exclusive: true }), storageError('MAILBOX_LOCKED'));
    await a.release();
    const x = await store.open('alice', { exclusive: true });
    await assert.rejects(store.open('alice', plain), storageError('MAILBOX_LOCKED'));
    await x.release();
    const b = await store.open('alice', plain);
    assert.equal(b.messages.length, 2);
    await b.release();
    await store.close();
    assert.deepEqual(await markers(), []);
  });

  it('R-S18 R-S3 a lingering marker goes by itself, and a snapshot that takes it up again waits for an expiry of this process', async () => {
    const a = await store.open('alice', plain);
    await a.release();
    assert.equal((await markers()).length, 1);
    // This process's expiry, paused while it holds the expire lock, ignores the idle marker and
    // removes m0; an open reviving that marker meanwhile must wait for it and not list m0.
    let resume!: () => void;
    let paused!: () => void;
    const pausedNow = new Promise<void>((r) => (paused = r));
    whileExpiring = () => {
      paused();
      return new Promise<void>((r) => (resume = r));
    };
    const expiry = store.expire('alice', (m) => m.uid === 1);
    await pausedNow;
    let opened = false;
    const b = store.open('alice', plain).then((snap) => ((opened = true), snap));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(opened, false, 'waits while the expire lock is held');
    resume();
    const r = await expiry;
    assert.equal(r.inUse, false, 'the lingering marker covered nothing');
    assert.deepEqual(r.removed.map((m) => m.uid), [1]);
    const snap = await b;
    assert.equal(opened, true);
    assert.deepEqual(snap.messages.map((m) => m.uid), [2], 'the snapshot lists what the expiry left');
    await snap.release();
    for (let i = 0; i < 100 && (await markers()).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await markers(), [], `gone within ${MARKER_LINGER_MS} ms of the last release`);
  });
});

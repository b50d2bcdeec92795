/**
 * Maildir session markers (maildir-sessions.ts): retention run by another process (`poplar
 * expire`) never removes a message that a live session of any process has in its snapshot, and a
 * marker left by a killed process does not block it forever.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { FileLock } from '../../src/storage/file-lock.js';
import { EXPIRE_LOCK_FILE } from '../../src/storage/maildir/maildir-sessions.js';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import { MAILDIR_STORE_MODULE } from '../helpers/node-snippet.js';

const plain = { exclusive: false };

/** A child process holding an open snapshot of `root` until its stdin closes; resolves once open. */
async function holdSnapshot(root: string): Promise<ChildProcessWithoutNullStreams> {
  const code = `
    const { MaildirStore } = await import(${JSON.stringify(MAILDIR_STORE_MODULE)});
    const snap = await new MaildirStore({ path: () => ${JSON.stringify(root)} }).open('alice', { exclusive: false });
    console.log('open ' + snap.messages.length);
    process.stdin.resume();
    process.stdin.on('end', async () => { await snap.release(); console.log('released'); process.exit(0); });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code]);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  while (!out.includes('open ')) {
    if (child.exitCode !== null) throw new Error(`child exited ${child.exitCode}`);
    await sleep(10);
  }
  return child;
}

describe('Maildir session markers and expiry across processes', () => {
  let dir: string;
  let root: string;
  let store: MaildirStore;
  const children: ChildProcessWithoutNullStreams[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poplar-sessions-'));
    root = join(dir, 'Maildir');
    store = new MaildirStore({ path: () => root });
    for (let i = 0; i < 3; i++) await store.deliver('alice', Buffer.from(`m${i}\r\n`));
  });
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('R-S18 R-S3 a snapshot open in another process blocks expire until it is released', async () => {
    const child = await holdSnapshot(root);
    children.push(child);
    assert.deepEqual(await store.expire('alice', () => true), { inUse: true, removed: [] });
    assert.equal((await store.usage('alice')).messages, 3);
    child.stdin.end();
    await once(child, 'exit');
    const r = await store.expire('alice', () => true);
    assert.equal(r.inUse, false);
    assert.equal(r.removed.length, 3);
    assert.deepEqual((await readdir(root)).filter((n) => n.startsWith('poplar-session.')), [], 'marker removed at release');
  });

  it('R-S18 the marker of a killed process does not block expire and is cleaned up', async () => {
    const child = await holdSnapshot(root);
    children.push(child);
    assert.equal((await readdir(root)).filter((n) => n.startsWith('poplar-session.')).length, 1);
    child.kill('SIGKILL');
    await once(child, 'exit');
    const r = await store.expire('alice', () => true);
    assert.equal(r.inUse, false);
    assert.equal(r.removed.length, 3);
    assert.deepEqual((await readdir(root)).filter((n) => n.startsWith('poplar-session.')), []);
  });

  it('R-S18 R-S3 a session opened during an expiry waits for it and never lists what it removed', async () => {
    const lock = (await FileLock.acquire(join(root, EXPIRE_LOCK_FILE), 0))!; // an expiry in progress
    let opened = false;
    const pending = store.open('alice', plain).then((s) => {
      opened = true;
      return s;
    });
    await sleep(150);
    assert.equal(opened, false, 'open waits while the expiry holds its lock');
    const victim = (await readdir(join(root, 'new')))[0]!;
    await unlink(join(root, 'new', victim)); // what the expiry removes
    await lock.release();
    const snap = await pending;
    assert.equal(snap.messages.length, 2);
    await snap.release();
  });
});

describe('Maildir tmp/ debris', () => {
  it('R-X6 a partial file a crash left in tmp/ is never listed, and is removed once 36 hours old', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'poplar-tmp-'));
    const root = join(dir, 'Maildir');
    const store = new MaildirStore({ path: () => root });
    try {
      await store.deliver('alice', Buffer.from('whole\r\n'));
      const { utimes, writeFile } = await import('node:fs/promises');
      await writeFile(join(root, 'tmp', '1700000000.M1P9.crashed'), 'Subject: half');
      await writeFile(join(root, 'tmp', '1700000001.M1P9.writing'), 'Subject: being written');
      const old = new Date(Date.now() - 37 * 60 * 60 * 1000);
      await utimes(join(root, 'tmp', '1700000000.M1P9.crashed'), old, old);
      const snap = await store.open('alice', plain);
      assert.equal(snap.messages.length, 1, 'tmp/ is never listed');
      await snap.release();
      assert.deepEqual(await readdir(join(root, 'tmp')), ['1700000001.M1P9.writing'], 'only the stale file was removed');
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

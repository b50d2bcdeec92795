/**
 * Regression tests for issue #12: symbolic links in a Maildir were followed. A link in cur/ or
 * new/ to a file of the server (the users file, the TLS key) was listed and served by RETR, a
 * `poplar-uidlist` link made deliveries append to its target, and a maildir or folder swapped for
 * a link to another directory was read and written as if it were the maildrop. R-X7: a Maildir
 * never follows a link (maildir-links.ts); links are left out and logged once per file.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { MaildropSnapshot } from '../../src/storage/mail-store.js';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import { storageError } from './conformance.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { startTestServer } from '../helpers/test-server.js';

const plain = { exclusive: false };
const SECRET = 'SECRET-KEY-MATERIAL do not serve\n';

/** A logger that keeps what the store warns about. */
function capture(): { warn(obj: Record<string, unknown>, msg: string): void; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { lines, warn: (obj) => void lines.push(obj) };
}

async function readAll(snap: MaildropSnapshot, id: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of await snap.read(id)) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString();
}

describe('Maildir symbolic links (issue #12)', () => {
  let dir: string;
  let secret: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poplar-links-'));
    await mkdir(join(dir, 'etc'));
    secret = join(dir, 'etc', 'users');
    await writeFile(secret, SECRET);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const reads of ['event-loop', 'threadpool'] as const) {
    it(`R-X7 links in new/ and cur/ are not listed, not readable, and logged once each (${reads})`, async () => {
      const log = capture();
      const store = new MaildirStore({ path: (m) => join(dir, 'mail', m), reads, logger: log });
      await store.deliver('alice', Buffer.from('Subject: real\r\n\r\nbody\r\n'));
      const root = join(dir, 'mail', 'alice');
      await symlink(secret, join(root, 'new', '1700000000.link1.host'));
      // Named with a size, so nothing needs to open it to list it: only the entry type tells.
      await symlink(secret, join(root, 'cur', '1700000001.link2.host,S=33,W=34:2,'));
      for (let login = 0; login < 2; login++) {
        const snap = await store.open('alice', plain);
        assert.equal(snap.messages.length, 1, 'only the real message is listed');
        assert.match(await readAll(snap, snap.messages[0]!.id), /Subject: real/);
        await snap.release();
      }
      const paths = log.lines.filter((l) => l['event'] === 'maildir_symlink_skipped').map((l) => String(l['path']));
      assert.equal(paths.length, 2, `each link logged once over two logins: ${paths.join(', ')}`);
      assert.ok(paths.some((p) => p.includes('link1')) && paths.some((p) => p.includes('link2')));
      assert.equal(await readFile(secret, 'utf8'), SECRET);
      await store.close();
    });

    it(`R-X7 R-S3 a message file swapped for a link between LIST and RETR is refused, not its target served (${reads})`, async () => {
      const store = new MaildirStore({ path: (m) => join(dir, 'mail', m), reads });
      await store.deliver('alice', Buffer.from('Subject: real\r\n\r\nbody\r\n'));
      const snap = await store.open('alice', plain);
      const root = join(dir, 'mail', 'alice');
      const file = (await readdirNames(join(root, 'cur')))[0]!;
      await unlink(join(root, 'cur', file));
      await symlink(secret, join(root, 'cur', file));
      await assert.rejects(readAll(snap, snap.messages[0]!.id), storageError('IO'));
      await snap.release();
      await store.close();
    });

    it(`R-X7 R-S3 a cur/ swapped for a link to another directory after the listing is not read through (${reads})`, async () => {
      const store = new MaildirStore({ path: (m) => join(dir, 'mail', m), reads });
      await store.create('alice');
      const root = join(dir, 'mail', 'alice');
      // The owner names a message like the server's file, gets it listed, then swaps the folder.
      await writeFile(join(root, 'cur', 'users'), 'Subject: bait\r\n\r\nmine\r\n');
      const snap = await store.open('alice', plain);
      assert.equal(snap.messages.length, 1);
      await rename(join(root, 'cur'), join(root, 'cur.old'));
      await symlink(join(dir, 'etc'), join(root, 'cur'));
      await assert.rejects(readAll(snap, snap.messages[0]!.id), storageError('IO'));
      // DELE + QUIT must not unlink the server's file through the link either.
      await assert.rejects(snap.commit({ expunge: [snap.messages[0]!.id], seen: [] }), storageError('IO'));
      assert.equal(await readFile(secret, 'utf8'), SECRET);
      await snap.release();
      await store.close();
    });
  }

  it('R-X7 R-X6 a poplar-uidlist that is a link fails the delivery and leaves its target unchanged', async () => {
    const store = new MaildirStore({ path: (m) => join(dir, 'mail', m) });
    await store.create('alice');
    const root = join(dir, 'mail', 'alice');
    const policy = join(dir, 'etc', 'user-policy.toml');
    await writeFile(policy, '[alice]\nquota = 1\n');
    await symlink(policy, join(root, 'poplar-uidlist'));
    await assert.rejects(store.deliver('alice', Buffer.from('Subject: x\r\n\r\nx\r\n')), storageError('IO'));
    assert.equal(await readFile(policy, 'utf8'), '[alice]\nquota = 1\n');
    assert.deepEqual(await readdirNames(join(root, 'new')), [], 'the refused delivery left no file behind');
    await assert.rejects(store.open('alice', plain), storageError('IO'));
    assert.equal(await readFile(policy, 'utf8'), '[alice]\nquota = 1\n');
    await store.close();
  });

  it('R-X7 a maildrop whose root or folder is a link to another directory is refused for login and delivery', async () => {
    const store = new MaildirStore({ path: (m) => join(dir, 'mail', m) });
    await store.deliver('bob', Buffer.from('Subject: for bob\r\n\r\nprivate\r\n'));
    await mkdir(join(dir, 'mail'), { recursive: true });
    await symlink(join(dir, 'mail', 'bob'), join(dir, 'mail', 'mallory'));
    await assert.rejects(store.open('mallory', plain), storageError('IO'));
    await assert.rejects(store.deliver('mallory', Buffer.from('Subject: x\r\n\r\nx\r\n')), storageError('IO'));
    await store.create('carol');
    await rm(join(dir, 'mail', 'carol', 'new'), { recursive: true });
    await symlink(join(dir, 'mail', 'bob', 'cur'), join(dir, 'mail', 'carol', 'new'));
    await assert.rejects(store.open('carol', plain), storageError('IO'));
    await assert.rejects(store.deliver('carol', Buffer.from('Subject: x\r\n\r\nx\r\n')), storageError('IO'));
    const snap = await store.open('bob', plain);
    assert.equal(snap.messages.length, 1, "bob's maildrop is untouched");
    await snap.release();
    await store.close();
  });

  it('R-X7 a lock file that is a link is never followed: a FIFO behind it does not hold the delivery', async () => {
    const store = new MaildirStore({ path: (m) => join(dir, 'mail', m), lockWaitMs: 200 });
    await store.create('alice');
    const fifo = join(dir, 'etc', 'fifo');
    execFileSync('mkfifo', [fifo]);
    await symlink(fifo, join(dir, 'mail', 'alice', 'poplar-uidlist.lock'));
    // Before the fix the lock was read through the link: open(2) of the FIFO waited for a writer.
    const outcome = await Promise.race([
      store.deliver('alice', Buffer.from('Subject: x\r\n\r\nx\r\n')).then(() => 'delivered', (err: unknown) => err),
      sleep(3000).then(() => 'hung'),
    ]);
    closeSync(openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK)); // releases a reader stuck in open(2)
    assert.notEqual(outcome, 'hung', 'the delivery waited on the FIFO behind the lock link');
    assert.ok(storageError('IO')(outcome));
    await store.close();
  });

  it('R-X7 R-S3 over POP3: a linked file is not in LIST, and one swapped in after LIST answers RETR with -ERR', async () => {
    const log = capture();
    const store = new MaildirStore({ path: (m) => join(dir, 'mail', m), logger: log });
    await store.deliver('alice', Buffer.from('Subject: one\r\n\r\nfirst\r\n'));
    await store.deliver('alice', Buffer.from('Subject: two\r\n\r\nsecond\r\n'));
    const root = join(dir, 'mail', 'alice');
    await symlink(secret, join(root, 'new', '1700000000.link.host,S=33,W=34'));
    const t = await startTestServer({ store });
    try {
      const c = await Pop3Client.connect(t.port);
      assert.match(await c.login('alice', 'wonderland'), /^\+OK/);
      const list = await c.multi('LIST');
      assert.equal(list.lines.length, 2, `LIST: ${list.lines.join(' | ')}`);
      // Message 2's file is swapped for a link to the secret between LIST and RETR.
      let victim = '';
      for (const f of await readdirNames(join(root, 'cur'))) {
        if ((await readFile(join(root, 'cur', f), 'utf8').catch(() => '')).includes('Subject: two')) victim = f;
      }
      assert.ok(victim !== '');
      await unlink(join(root, 'cur', victim));
      await symlink(secret, join(root, 'cur', victim));
      const retr = await c.cmd('RETR 2');
      assert.match(retr, /^-ERR/);
      assert.doesNotMatch(retr, /SECRET/);
      const one = await c.multi('RETR 1');
      assert.match(one.lines.join('\n'), /Subject: one/);
      assert.match(await c.cmd('QUIT'), /^\+OK/);
      assert.equal(log.lines.filter((l) => l['event'] === 'maildir_symlink_skipped').length, 1);
    } finally {
      await t.close();
      await store.close();
    }
  });
});

async function readdirNames(path: string): Promise<string[]> {
  return (await readdir(path)).sort();
}

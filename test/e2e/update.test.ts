/**
 * Deletion, snapshots and locking over a real socket, on both backends: deletes happen only in
 * UPDATE (R-K4, R-S11), a session sees its login snapshot (R-S3), uids are never reused (R-S12),
 * and RETR marks a message seen.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Pop3Client } from '../helpers/pop3-client.js';
import { waitFor, withServer, type TestServer } from '../helpers/test-server.js';
import type { SessionSettings } from '../../src/session/context.js';

for (const backend of ['memory', 'maildir'] as const) {
  describe(`UPDATE and snapshots (${backend})`, () => {
    /** A server with `n` messages for alice; always closed, even when the test fails. */
    function seeded(n: number, settings: Partial<SessionSettings>, fn: (t: TestServer) => Promise<void>): Promise<void> {
      return withServer({ store: backend, settings }, async (t) => {
        for (let i = 1; i <= n; i++) await t.store.deliver('alice', Buffer.from(`Subject: m${i}\r\n\r\nbody ${i}\r\n`));
        await fn(t);
      });
    }

    it('R-K4 a dropped connection deletes nothing', async () => {
      await seeded(3, {}, async (t) => {
        const c = await Pop3Client.connect(t.port);
        await c.login('alice', 'wonderland');
        await c.cmd('DELE 1');
        await c.cmd('DELE 2');
        c.close();
        await waitFor(async () => (await t.sessions()) === 0);
        const c2 = await Pop3Client.connect(t.port);
        assert.match(await c2.login('alice', 'wonderland'), /has 3 messages/);
        await c2.cmd('QUIT');
      });
    });

    it('R-K4 R-S11 QUIT in TRANSACTION removes exactly the messages marked deleted', async () => {
      await seeded(4, {}, async (t) => {
        const c = await Pop3Client.connect(t.port);
        await c.login('alice', 'wonderland');
        const uids = (await c.multi('UIDL')).lines.map((l) => l.split(' ')[1]);
        await c.cmd('DELE 2');
        await c.cmd('DELE 4');
        assert.match(await c.cmd('QUIT'), /^\+OK .*\(2 messages left\)/);
        await c.closed();
        const c2 = await Pop3Client.connect(t.port);
        await c2.login('alice', 'wonderland');
        assert.deepEqual((await c2.multi('UIDL')).lines.map((l) => l.split(' ')[1]), [uids[0], uids[2]]);
        assert.deepEqual((await c2.multi('RETR 2')).lines, ['Subject: m3', '', 'body 3']);
        await c2.cmd('QUIT');
      });
    });

    it('R-S12 uids are never reused after deletion', async () => {
      await seeded(2, {}, async (t) => {
        const c = await Pop3Client.connect(t.port);
        await c.login('alice', 'wonderland');
        const before = (await c.multi('UIDL')).lines.map((l) => Number(l.split(' ')[1]));
        await c.cmd('DELE 2');
        await c.cmd('QUIT');
        await c.closed();
        await t.store.deliver('alice', Buffer.from('Subject: new\r\n\r\nx\r\n'));
        const c2 = await Pop3Client.connect(t.port);
        await c2.login('alice', 'wonderland');
        const after = (await c2.multi('UIDL')).lines.map((l) => Number(l.split(' ')[1]));
        assert.equal(after.length, 2);
        assert.equal(after[0], before[0]);
        assert.ok(after[1]! > before[1]!, `new uid ${after[1]} must exceed deleted uid ${before[1]}`);
        await c2.cmd('QUIT');
      });
    });

    it('R-S3 a session sees its login snapshot; RETR of a message expunged meanwhile answers -ERR', async () => {
      await seeded(2, {}, async (t) => {
        const a = await Pop3Client.connect(t.port);
        await a.login('alice', 'wonderland');
        await t.store.deliver('alice', Buffer.from('Subject: later\r\n\r\nx\r\n'));
        assert.match(await a.cmd('STAT'), /^\+OK 2 /, 'a later delivery is not seen');
        const b = await Pop3Client.connect(t.port);
        assert.match(await b.login('alice', 'wonderland'), /has 3 messages/, 'snapshot mode lets a second session in');
        await b.cmd('DELE 1');
        await b.cmd('QUIT');
        await b.closed();
        assert.match(await a.cmd('RETR 1'), /^-ERR .*removed/);
        assert.match(await a.cmd('TOP 1 0'), /^-ERR .*removed/);
        assert.match(await a.cmd('LIST 1'), /^\+OK 1 /, 'the snapshot still lists it');
        assert.deepEqual((await a.multi('RETR 2')).lines, ['Subject: m2', '', 'body 2']);
        await a.cmd('DELE 1'); // deleting what is already gone is harmless (R-S11)
        assert.match(await a.cmd('QUIT'), /^\+OK/);
      });
    });

    it('R-S3 exclusive mode answers a second login -ERR [IN-USE] until the first ends', async () => {
      await seeded(1, { lockMode: 'exclusive' }, async (t) => {
        const a = await Pop3Client.connect(t.port);
        await a.login('alice', 'wonderland');
        const b = await Pop3Client.connect(t.port);
        assert.match(await b.login('alice', 'wonderland'), /^-ERR \[IN-USE\] /);
        await a.cmd('QUIT');
        await a.closed();
        assert.match(await b.login('alice', 'wonderland'), /^\+OK/);
        await b.cmd('QUIT');
      });
    });

    it('RETR marks a message seen; a dropped session still records it, and deletes nothing', async () => {
      await seeded(2, {}, async (t) => {
        const c = await Pop3Client.connect(t.port);
        await c.login('alice', 'wonderland');
        await c.multi('RETR 2');
        await c.cmd('DELE 1');
        c.close();
        await waitFor(async () => (await t.sessions()) === 0);
        const snap = await t.store.open('alice', { exclusive: false });
        assert.deepEqual(snap.messages.map((m) => m.seen), [false, true]);
        await snap.release();
      });
    });
  });
}

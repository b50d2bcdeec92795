/**
 * The conformance cases of the storage verbs delivery and mailbox policy use (part of the one
 * suite in conformance.ts, which every backend runs): carried-over UIDLs (R-X11), delivery
 * options (R-X15), usage for quotas (R-S16) and expiry for retention (R-S18).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { MailStore } from '../../src/storage/mail-store.js';
import { readAll, storageError } from './conformance.js';

const plain = { exclusive: false };

export function registerPolicyCases(store: () => MailStore): void {
    it('R-X11 a carried-over UIDL is kept with its message; others have none', async () => {
      const carried = '0000000100000A2B';
      await store().deliver('alice', Buffer.from('Subject: old\r\n\r\nx\r\n'), { uidl: carried });
      await store().deliver('alice', Buffer.from('Subject: new\r\n\r\ny\r\n'));
      const longest = 'x'.repeat(70);
      await store().deliver('alice', Buffer.from('z\r\n'), { uidl: longest });
      for (let round = 0; round < 2; round++) {
        const snap = await store().open('alice', plain);
        assert.deepEqual(snap.messages.map((m) => m.uidl), [carried, undefined, longest]);
        assert.equal('uidl' in snap.messages[1]!, false, 'no uidl key without a carried UIDL');
        await snap.commit({ expunge: [], seen: [snap.messages[0]!.id] });
        await snap.release();
      }
    });

    it('R-S3 R-X9 R-X11 the compact list gives what messages gives, and finds each id at its position', async () => {
      await store().deliver('alice', Buffer.from('a\r\n'), { uidl: 'carried-1' });
      await store().deliver('alice', Buffer.from('bb\r\n'), { seen: true });
      await store().deliver('alice', Buffer.from('ccc\r\n'));
      const snap = await store().open('alice', plain);
      const { list } = snap;
      assert.equal(list.length, 3);
      assert.deepEqual(list.toArray(), snap.messages);
      for (const [i, m] of snap.messages.entries()) {
        assert.deepEqual([list.uid(i), list.size(i), list.seen(i), list.id(i), list.uidl(i)], [m.uid, m.size, m.seen, m.id, m.uidl]);
        assert.equal(list.indexOf(m.id), i);
        assert.equal(list.indexOf(m.id, (i + 1) % 3), i, 'a wrong position hint is ignored');
      }
      assert.equal(list.indexOf('no such id'), -1);
      await snap.release();
    });

    it('R-X11 a UIDL that is not 1-70 printable characters is refused with INVALID_UIDL', async () => {
      for (const bad of ['', 'a b', 'x'.repeat(71), 'caf\u00e9', 'tab\there']) {
        await assert.rejects(store().deliver('alice', Buffer.from('x\r\n'), { uidl: bad }), storageError('INVALID_UIDL'));
      }
      const snap = await store().open('alice', plain);
      assert.deepEqual(snap.messages, [], 'nothing was stored');
      await snap.release();
    });

    it('R-X11 R-S12 deliver with a wanted uid gets it while no uid at or above it was given, else the next', async () => {
      assert.equal((await store().deliver('alice', Buffer.from('a\r\n'), { uid: 3 })).uid, 3);
      assert.equal((await store().deliver('alice', Buffer.from('b\r\n'))).uid, 4, 'the counter continues after it');
      assert.equal((await store().deliver('alice', Buffer.from('c\r\n'), { uid: 2 })).uid, 5, 'a uid below the next is not given again');
      assert.equal((await store().deliver('alice', Buffer.from('d\r\n'), { uid: 9 })).uid, 9);
      const snap = await store().open('alice', plain);
      assert.deepEqual(snap.messages.map((m) => m.uid), [3, 4, 5, 9]);
      await snap.release();
    });

    it('R-X15 deliver can store a message as already retrieved', async () => {
      await store().deliver('alice', Buffer.from('a\r\n'), { seen: true });
      await store().deliver('alice', Buffer.from('b\r\n'));
      const snap = await store().open('alice', plain);
      assert.deepEqual(snap.messages.map((m) => m.seen), [true, false]);
      await snap.release();
    });

    it('R-S16 usage counts the messages and their exact sizes, and creates nothing', async () => {
      assert.deepEqual(await store().usage('alice'), { messages: 0, bytes: 0 });
      assert.equal(await store().exists('alice'), false);
      const a = await store().deliver('alice', Buffer.from('a\nb\n'));
      const b = await store().deliver('alice', Buffer.from('c\r\n'));
      assert.deepEqual(await store().usage('alice'), { messages: 2, bytes: a.size + b.size });
      const snap = await store().open('alice', plain);
      await snap.commit({ expunge: [snap.messages[0]!.id], seen: [] });
      await snap.release();
      assert.deepEqual(await store().usage('alice'), { messages: 1, bytes: b.size });
    });

    it('R-S16 deliver with a quota refuses inside the store with OVER_QUOTA, keeps nothing of it, and reports usage before and after', async () => {
      const quota = { bytes: 0, messages: 2 };
      const a = await store().deliver('alice', Buffer.from('a\r\n'), { quota });
      assert.deepEqual(a.usage, { before: { messages: 0, bytes: 0 }, after: { messages: 1, bytes: a.size } });
      const b = await store().deliver('alice', Buffer.from('bb\r\n'), { quota });
      assert.deepEqual(b.usage, { before: { messages: 1, bytes: a.size }, after: { messages: 2, bytes: a.size + b.size } });
      await assert.rejects(store().deliver('alice', Buffer.from('ccc\r\n'), { quota }), storageError('OVER_QUOTA'));
      assert.deepEqual(await store().usage('alice'), { messages: 2, bytes: a.size + b.size }, 'the refused message left nothing');
      const w = await store().deliver('alice', Buffer.from('warning\r\n'));
      assert.equal(w.usage, undefined, 'no quota given: nothing checked, no usage reported');
      await assert.rejects(store().deliver('alice', Buffer.from('d\r\n'), { quota: { bytes: a.size + b.size + w.size + 2, messages: 0 } }), storageError('OVER_QUOTA'));
      const fits = await store().deliver('alice', Buffer.from('e\r\n'), { quota: { bytes: a.size + b.size + w.size + 3, messages: 0 } });
      assert.equal(fits.usage?.after.bytes, a.size + b.size + w.size + 3, 'exactly full is allowed');
      const snap = await store().open('alice', plain);
      assert.deepEqual(snap.messages.map((m) => m.uid), [a.uid, b.uid, w.uid, fits.uid]);
      assert.ok(fits.uid > w.uid, 'uids still increase');
      await snap.release();
    });

    it('R-S17 a warning QuotaLimit.warn returns is stored right after its message in the same commit, and counted by the next check', async () => {
      const calls: string[] = [];
      const warn = (before: { messages: number }, after: { messages: number }): Buffer | undefined => {
        calls.push(`${before.messages}->${after.messages}`);
        return after.messages === 2 ? Buffer.from('Subject: warning\r\n\r\nnearly full\r\n') : undefined;
      };
      const quota = { bytes: 0, messages: 4, warn };
      const one = await store().deliver('alice', Buffer.from('1\r\n'), { quota });
      assert.equal(one.warning, undefined);
      const two = await store().deliver('alice', Buffer.from('2\r\n'), { quota });
      assert.equal(two.warning?.uid, two.uid + 1, 'the warning right after its message');
      assert.equal(two.usage?.after.messages, 2, 'usage.after leaves the warning out');
      const three = await store().deliver('alice', Buffer.from('3\r\n'), { quota });
      assert.equal(three.usage?.before.messages, 3, 'the warning counted');
      await assert.rejects(store().deliver('alice', Buffer.from('4\r\n'), { quota }), storageError('OVER_QUOTA'));
      assert.deepEqual(calls, ['0->1', '1->2', '3->4']);
      const snap = await store().open('alice', plain);
      assert.equal(snap.messages.length, 4);
      assert.equal(snap.messages[2]!.size, two.warning!.size);
      assert.match((await readAll(snap, snap.messages[2]!.id)).toString(), /nearly full/);
      await snap.release();
    });

    it('R-S18 expire removes exactly what select picks, with arrival times; dryRun removes nothing', async () => {
      const day = 24 * 60 * 60 * 1000;
      const t0 = Date.UTC(2024, 0, 1);
      await store().deliver('alice', Buffer.from('old seen\r\n'), { received: t0, seen: true });
      await store().deliver('alice', Buffer.from('old unseen\r\n'), { received: t0 + day });
      await store().deliver('alice', Buffer.from('carried\r\n'), { received: t0 + 2 * day, uidl: 'U-3' });
      const seenAtSelect: boolean[] = [];
      const pick = (m: { seen: boolean; received: number; uidl?: string }): boolean => {
        seenAtSelect.push(m.seen);
        return m.seen || m.uidl === 'U-3';
      };
      const dry = await store().expire('alice', pick, { dryRun: true });
      assert.equal(dry.inUse, false);
      assert.deepEqual(dry.removed.map((m) => [m.seen, Math.round(m.received / 1000), m.uidl]), [
        [true, t0 / 1000, undefined],
        [false, (t0 + 2 * day) / 1000, 'U-3'],
      ]);
      assert.equal((await store().usage('alice')).messages, 3, 'dry run removed nothing');
      const real = await store().expire('alice', pick);
      assert.deepEqual(real.removed.map((m) => m.uid), dry.removed.map((m) => m.uid));
      const snap = await store().open('alice', plain);
      assert.deepEqual(snap.messages.map((m) => m.seen), [false]);
      assert.equal((await readAll(snap, snap.messages[0]!.id)).toString(), 'old unseen\r\n');
      await snap.release();
      assert.deepEqual(await store().expire('nobody', () => true), { inUse: false, removed: [] });
    });

    it('R-S18 R-S3 expire removes nothing while a session has the maildrop open', async () => {
      for (const b of ['a\r\n', 'b\r\n']) await store().deliver('alice', Buffer.from(b));
      const snap = await store().open('alice', plain);
      const r = await store().expire('alice', () => true);
      assert.deepEqual(r, { inUse: true, removed: [] });
      for (const m of snap.messages) assert.ok((await readAll(snap, m.id)).length > 0, 'still readable');
      await snap.release();
      assert.equal((await store().expire('alice', () => true)).removed.length, 2, 'swept once the session ended');
      assert.deepEqual(await store().usage('alice'), { messages: 0, bytes: 0 });
    });
}

/**
 * The conformance cases of R-X12's `delete_mode = "hide"` (part of the one suite in
 * conformance.ts, which every backend runs): CommitChanges.hide keeps a message but no later
 * snapshot lists it, its uid is never reused, and retention sees it as hidden.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { expiredAt } from '../../src/policy/retention.js';
import type { MailStore } from '../../src/storage/mail-store.js';
import { readAll } from './conformance.js';

const plain = { exclusive: false };
const DAY = 24 * 60 * 60 * 1000;

export function registerHideCases(store: () => MailStore): void {
  it('R-X12 hidden messages are left out of every later snapshot, the others kept as they were', async () => {
    for (const b of ['1\r\n', '2\r\n', '3\r\n']) await store().deliver('alice', Buffer.from(b));
    const snap = await store().open('alice', plain);
    const [m1, m2, m3] = snap.messages;
    await snap.commit({ expunge: [], seen: [m1!.id], hide: [m2!.id, 'no-such-id'] });
    await snap.commit({ expunge: [], seen: [m1!.id], hide: [m2!.id, 'no-such-id'] }); // repeated: harmless
    await snap.release();
    for (let round = 0; round < 2; round++) {
      const after = await store().open('alice', plain);
      assert.deepEqual(after.messages, [{ ...m1!, seen: true }, m3]);
      await after.release();
    }
  });

  it('R-X12 R-S3 a snapshot that listed a message still reads it after another session hid it', async () => {
    await store().deliver('alice', Buffer.from('keep me\r\n'));
    const s1 = await store().open('alice', plain);
    const s2 = await store().open('alice', plain);
    await s2.commit({ expunge: [], seen: [], hide: [s2.messages[0]!.id] });
    await s2.release();
    assert.equal((await readAll(s1, s1.messages[0]!.id)).toString(), 'keep me\r\n', 'not removed, only hidden');
    await s1.release();
    const s3 = await store().open('alice', plain);
    assert.deepEqual(s3.messages, []);
    await s3.release();
  });

  it('R-X12 R-S12 uids of hidden messages are never reused; hidden mail still counts in usage', async () => {
    const first = await store().deliver('alice', Buffer.from('a\r\n'));
    const snap = await store().open('alice', plain);
    await snap.commit({ expunge: [], seen: [], hide: [snap.messages[0]!.id] });
    await snap.release();
    const later = await store().deliver('alice', Buffer.from('b\r\n'));
    assert.ok(later.uid > first.uid, `uid ${later.uid} reuses ${first.uid}`);
    const after = await store().open('alice', plain);
    assert.deepEqual(after.messages.map((m) => m.uid), [later.uid]);
    await after.release();
    assert.deepEqual(await store().usage('alice'), { messages: 2, bytes: first.size + later.size }, 'the hidden file takes space');
  });

  it('R-X12 R-S18 expire reports hidden messages as hidden, and retention removes them at the retrieved age', async () => {
    const t0 = Date.UTC(2024, 0, 1);
    await store().deliver('alice', Buffer.from('hidden\r\n'), { received: t0 });
    await store().deliver('alice', Buffer.from('unread\r\n'), { received: t0 });
    const snap = await store().open('alice', plain);
    const [hidden, unread] = snap.messages;
    await snap.commit({ expunge: [], seen: [], hide: [hidden!.id] });
    await snap.release();
    const dry = await store().expire('alice', () => true, { dryRun: true });
    assert.deepEqual(dry.removed.map((m) => [m.uid, m.hidden, m.seen]), [[hidden!.uid, true, false], [unread!.uid, false, false]]);
    // 7 days for retrieved mail, 60 for the rest (RFC 1939 §8): at day 10 only the hidden one goes.
    const rule = { retrievedDays: 7, unretrievedDays: 60 };
    const swept = await store().expire('alice', expiredAt(rule, t0 + 10 * DAY));
    assert.deepEqual(swept.removed.map((m) => m.uid), [hidden!.uid]);
    assert.deepEqual(await store().usage('alice'), { messages: 1, bytes: unread!.size });
    const after = await store().open('alice', plain);
    assert.deepEqual(after.messages, [unread]);
    await after.release();
  });
}

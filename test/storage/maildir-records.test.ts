/**
 * UidRecords (maildir-records.ts), the compact uidlist records (R-S12 uids, R-S4 sizes, R-X9
 * memory): the first record for a name wins, a `D` removal finds its uid by binary search while
 * uids ascend and through a map once they do not (a hand-edited file), and a removed name is
 * free for a new record.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UidRecords } from '../../src/storage/maildir/maildir-records.js';

describe('Maildir uidlist records', () => {
  it('R-S12 ascending uids: first record wins, removal by uid, a freed name takes a new record', () => {
    const r = new UidRecords();
    for (let i = 1; i <= 200; i++) assert.equal(r.add(`m${i}`, i, 100 + i), true);
    assert.equal(r.add('m5', 999, 1), false, 'the first record for a name wins');
    assert.deepEqual(r.get('m5'), { uid: 5, size: 105 });
    r.removeUid(5);
    r.removeUid(777); // no such uid: nothing happens
    assert.equal(r.has('m5'), false);
    assert.equal(r.size, 199);
    assert.equal(r.add('m5', 201, 7), true, 'the name is free again');
    assert.deepEqual(r.get('m5'), { uid: 201, size: 7 });
    r.removeUid(5); // the old uid no longer names it
    assert.deepEqual(r.get('m5'), { uid: 201, size: 7 });
    assert.equal([...r].length, 200);
  });

  it('R-S12 uids that do not ascend (a hand-edited uidlist) are still removed by uid', () => {
    const r = new UidRecords();
    const uids = [10, 3, 7, 1, 20, 15];
    uids.forEach((u, i) => r.add(`n${i}`, u, u * 10));
    for (const u of [3, 20, 10]) r.removeUid(u);
    assert.deepEqual(
      [...r].map(([name, e]) => [name, e.uid, e.size]),
      [['n2', 7, 70], ['n3', 1, 10], ['n5', 15, 150]],
    );
    const slot = r.slot('n5');
    assert.equal(r.nameAt(slot), 'n5');
    assert.equal(r.uidAt(slot), 15);
    assert.equal(r.sizeAt(slot), 150);
    assert.equal(r.slot('n0'), -1);
  });
});

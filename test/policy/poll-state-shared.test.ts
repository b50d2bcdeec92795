/**
 * R-X10 R-X16 the file poll state shared by processes (`refresh`, what each worker of a
 * multi-process server uses): two PollState instances on one directory stand for two workers
 * (nothing in memory in common; the lock file is honoured by both). Regressions: each instance
 * decided a login from what it had read, so two logins at one instant were both admitted; and
 * each wrote its own download total over the other's.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PollState } from '../../src/policy/poll-state.js';

describe('R-X10 R-X16 poll state shared by two processes', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poplar-pollshared-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('R-X10 R-X16 LOGIN-DELAY: two logins of one maildrop claimed at one instant through two instances: exactly one admitted, every time', async () => {
    const a = new PollState(dir, { refresh: true });
    const b = new PollState(dir, { refresh: true });
    const t = Date.now();
    for (let i = 0; i < 20; i++) {
      const user = `race${i}`;
      // Both instances know the maildrop already (as workers that served it before).
      await a.downloaded(user, '2026-01-01');
      await b.downloaded(user, '2026-01-01');
      const claims = await Promise.all([a.claimLogin(user, t, 60_000), b.claimLogin(user, t, 60_000)]);
      assert.equal(claims.filter((c) => c.admitted).length, 1, `${user}: ${JSON.stringify(claims)}`);
    }
    // A claim is on disk at once: a third instance (a new worker) sees it.
    const c = new PollState(dir, { refresh: true });
    assert.equal((await c.claimLogin('race0', t + 1000, 60_000)).admitted, false);
    assert.equal((await c.claimLogin('race0', t + 61_000, 60_000)).admitted, true);
  });

  it('R-X10 R-X16 a cancelled claim is given back to every process; a later login is kept', async () => {
    const a = new PollState(dir, { refresh: true });
    const b = new PollState(dir, { refresh: true });
    const t = Date.now();
    const first = await a.claimLogin('cancel', t, 60_000);
    assert.equal(first.admitted, true);
    await a.cancelLogin('cancel', t, first.previous);
    assert.equal((await b.claimLogin('cancel', t + 10, 60_000)).admitted, true, 'the cancelled login does not count');
    assert.equal((await a.claimLogin('cancel', t + 20, 60_000)).admitted, false, 'the other process\'s login does');
  });

  it('R-X10 R-X16 download counts of two processes add up on disk and in each, never written over', async () => {
    const a = new PollState(dir, { refresh: true });
    const b = new PollState(dir, { refresh: true });
    const day = '2026-05-01';
    await a.downloaded('dl', day);
    await b.downloaded('dl', day);
    for (let round = 0; round < 10; round++) {
      a.countDownload('dl', day, 100);
      b.countDownload('dl', day, 7);
      await Promise.all([a.saveDownload('dl'), b.saveDownload('dl')]);
    }
    assert.equal(await a.downloaded('dl', day), 1070);
    assert.equal(await b.downloaded('dl', day), 1070);
    assert.equal(await new PollState(dir, { refresh: true }).downloaded('dl', day), 1070, 'on disk');
    b.countDownload('dl', day, 3);
    assert.equal(await b.downloaded('dl', day), 1073, 'an unsaved count counts in its process');
    assert.equal(await a.downloaded('dl', day), 1070);
    await b.saveDownload('dl');
    assert.equal(await a.downloaded('dl', day), 1073);
    assert.equal(await a.downloaded('dl', '2026-05-02'), 0, 'another day starts from nothing');
  });
});

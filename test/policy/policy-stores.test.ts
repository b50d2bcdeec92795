/**
 * The per-user policy and R-X10's poll state on both of their stores: the policy file and the
 * state folder, and PostgreSQL (R-X17; a real PostgreSQL, a database per test). The same cases run
 * on each; the PostgreSQL ones then prove what only a shared store can: two nodes (two pools, two
 * stores) hold one LOGIN-DELAY and one daily download cap between them.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Pop3Error } from '../../src/errors.js';
import { PollLimiter, type DownloadMeter, type PollLimitValues } from '../../src/policy/poll-limits.js';
import { PollState, type PollStore } from '../../src/policy/poll-state.js';
import { PostgresPollState } from '../../src/policy/postgres-poll-state.js';
import { PostgresOverrides } from '../../src/policy/postgres-user-policy.js';
import { UserPolicies, type EffectivePolicy } from '../../src/policy/user-policy.js';
import type { OverrideStore } from '../../src/policy/overrides.js';
import { migratedDatabase, poolOn, postgresForFile } from '../helpers/pg-pool.js';

const NONE: EffectivePolicy = { quotaBytes: 0, quotaMessages: 0, retrievedDays: 0, unretrievedDays: 0, loginDelay: 0, downloadBytesPerDay: 0 };
const { root, skip, server } = postgresForFile('poplar-policy-stores-');

let n = 0;
/** Two handles on one store, as two nodes (or a server and a command) have. */
interface Stores {
  overrides(): OverrideStore | string;
  poll(): PollStore;
}
type MakeStores = () => Promise<Stores>;

const makeFile: MakeStores = async () => {
  const base = join(root, String(++n));
  return { overrides: () => `${base}-policy.toml`, poll: () => new PollState(`${base}-state`) };
};
const makePostgres: MakeStores = async () => {
  const { url } = await migratedDatabase(server());
  return { overrides: () => new PostgresOverrides(poolOn(url)), poll: () => new PostgresPollState(poolOn(url)) };
};

async function refused(p: Promise<unknown>): Promise<Pop3Error> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof Pop3Error, String(e));
    return e;
  }
  assert.fail('expected a refusal');
}

function limiter(state: PollStore, values: () => PollLimitValues, now: () => number): PollLimiter {
  return new PollLimiter({ policy: { get: async () => values() }, state, now });
}

async function send(meter: DownloadMeter | undefined, ...sizes: number[]): Promise<void> {
  for (const s of sizes) meter?.add(s);
  await meter?.finish();
}

function suite(name: string, make: MakeStores, opts: { skip?: string | false } = {}): void {
  describe(`policy stores: ${name}`, { skip: opts.skip ?? false }, () => {
    it(`R-X17 R-S16 R-S18 ${name}: overrides are set, read over the defaults, dropped with "default", seen by another instance`, async () => {
      const stores = await make();
      const policies = new UserPolicies(stores.overrides(), { ...NONE, quotaBytes: 1000, retrievedDays: 7 });
      assert.deepEqual(await policies.update('alice', { quota_bytes: 50, login_delay: 300 }), { quota_bytes: 50, login_delay: 300 });
      assert.deepEqual(await policies.update('alice', { retrieved_days: 3 }), { quota_bytes: 50, login_delay: 300, retrieved_days: 3 });
      assert.deepEqual(await policies.get('alice'), { ...NONE, quotaBytes: 50, retrievedDays: 3, loginDelay: 300 });
      assert.deepEqual(await policies.get('bob'), { ...NONE, quotaBytes: 1000, retrievedDays: 7 });
      assert.deepEqual(await policies.capabilities(undefined), ['EXPIRE 7 USER', 'LOGIN-DELAY 0 USER']);
      assert.deepEqual(await policies.capabilities('alice'), ['EXPIRE 3', 'LOGIN-DELAY 300']);
      const other = new UserPolicies(stores.overrides(), NONE);
      assert.equal((await other.get('alice')).quotaBytes, 50, 'another instance (a node, a command) sees the override');
      await policies.update('alice', { quota_bytes: null, login_delay: null, retrieved_days: null });
      assert.equal(await policies.store.get('alice'), undefined, 'the last override dropped drops the user');
      await new Promise((r) => setTimeout(r, 150));
      assert.equal((await other.get('alice')).quotaBytes, 0, 'and the other instance sees that within its re-read time');
      assert.deepEqual(await policies.capabilities(undefined), ['EXPIRE 7']);
    });

    it(`R-X17 R-X10 ${name}: LOGIN-DELAY counts from the last admitted login; a cancelled login does not count`, async () => {
      let t = Date.UTC(2026, 0, 10, 12);
      const l = limiter((await make()).poll(), () => ({ loginDelay: 120, downloadBytesPerDay: 0 }), () => t);
      await (await l.admitLogin('alice')).confirm();
      t += 60_000;
      const e = await refused(l.admitLogin('alice'));
      assert.equal(e.responseCode, 'LOGIN-DELAY');
      assert.equal(e.message, 'Minimum time between logins is 120 seconds, try again in 60 seconds');
      t += 60_000;
      (await l.admitLogin('alice')).cancel(); // e.g. -ERR [IN-USE]: the user did not get in
      await l.state.flush(); // the cancel's write (PostgreSQL) has landed
      t += 1000;
      await (await l.admitLogin('alice')).confirm();
      assert.equal((await refused(l.admitLogin('alice'))).code, 'LOGIN_DELAY');
    });

    it(`R-X17 R-X10 ${name}: a clock set back does not lock a user out`, async () => {
      let t = Date.UTC(2026, 0, 10, 12);
      const l = limiter((await make()).poll(), () => ({ loginDelay: 3600, downloadBytesPerDay: 0 }), () => t);
      await (await l.admitLogin('alice')).confirm();
      t -= 2 * 3600_000;
      await (await l.admitLogin('alice')).confirm();
      t += 10_000;
      assert.equal((await refused(l.admitLogin('alice'))).code, 'LOGIN_DELAY', 'counted from the new login');
    });

    it(`R-X17 R-X10 R-X16 ${name}: regression: a login whose clock was read just before a racing login's claim was admitted as if the clock had been set back; now it is refused`, async () => {
      // Two workers or nodes: B reads the clock, A claims at a later instant, then B claims.
      let t = Date.UTC(2026, 0, 10, 12);
      const stores = await make();
      const a = limiter(stores.poll(), () => ({ loginDelay: 600, downloadBytesPerDay: 0 }), () => t);
      const b = limiter(stores.poll(), () => ({ loginDelay: 600, downloadBytesPerDay: 0 }), () => t - 5);
      await (await a.admitLogin('alice')).confirm();
      const e = await refused(b.admitLogin('alice'));
      assert.equal(e.responseCode, 'LOGIN-DELAY');
      assert.equal(e.message, 'Minimum time between logins is 600 seconds, try again in 600 seconds');
      t += 601_000;
      await (await b.admitLogin('alice')).confirm();
    });

    it(`R-X17 R-X10 ${name}: the download count is per UTC day and survives a restart`, async () => {
      let t = Date.UTC(2026, 0, 10, 23, 59, 59);
      const stores = await make();
      const l = limiter(stores.poll(), () => ({ loginDelay: 0, downloadBytesPerDay: 10 }), () => t);
      await send(await l.startDownload('alice'), 4, 4);
      await send(await l.startDownload('alice'), 4); // 8 < 10: starts, sent whole
      assert.equal((await refused(l.startDownload('alice'))).code, 'DOWNLOAD_LIMIT');
      const restarted = limiter(stores.poll(), () => ({ loginDelay: 0, downloadBytesPerDay: 10 }), () => t);
      assert.equal((await refused(restarted.startDownload('alice'))).code, 'DOWNLOAD_LIMIT', 'the count was kept');
      t += 1000; // 00:00:00 UTC
      await send(await restarted.startDownload('alice'), 9);
      assert.ok(await restarted.startDownload('alice'), 'a new day starts from 0');
    });
  });
}

suite('policy file and state folder', makeFile);
suite('postgres', makePostgres, { skip });

describe('R-X17 poll limits across nodes on one database', { skip }, () => {
  it('R-X17 R-X10 LOGIN-DELAY holds across two nodes, and of logins racing on both exactly one is admitted', async () => {
    const stores = await makePostgres();
    const t = Date.UTC(2026, 0, 10, 12);
    const values = (): PollLimitValues => ({ loginDelay: 300, downloadBytesPerDay: 0 });
    const nodes = [limiter(stores.poll(), values, () => t), limiter(stores.poll(), values, () => t)];
    const attempts = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => nodes[i % 2]!.admitLogin('alice')));
    assert.equal(attempts.filter((a) => a.status === 'fulfilled').length, 1, 'one login admitted in all');
    for (const a of attempts) if (a.status === 'rejected') assert.equal((a.reason as Pop3Error).code, 'LOGIN_DELAY');
    const later = limiter(stores.poll(), values, () => t + 299_000);
    assert.equal((await refused(later.admitLogin('alice'))).code, 'LOGIN_DELAY', 'a third node sees it too');
    await (await limiter(stores.poll(), values, () => t + 300_000).admitLogin('alice')).confirm();
  });

  it('R-X17 R-X10 the daily download cap adds up what every node sent', async () => {
    const stores = await makePostgres();
    const t = Date.UTC(2026, 0, 10, 12);
    const values = (): PollLimitValues => ({ loginDelay: 0, downloadBytesPerDay: 100 });
    const [a, b] = [limiter(stores.poll(), values, () => t), limiter(stores.poll(), values, () => t)];
    const [ma, mb] = [await a.startDownload('alice'), await b.startDownload('alice')];
    await Promise.all([send(ma, 30, 20), send(mb, 40)]); // 90 in all, each node below the cap alone
    assert.ok(await a.startDownload('alice'), '90 < 100: one more may start');
    await send(await b.startDownload('alice'), 15);
    assert.equal((await refused(a.startDownload('alice'))).code, 'DOWNLOAD_LIMIT', 'node A counts what node B sent');
    assert.equal((await refused(b.startDownload('alice'))).code, 'DOWNLOAD_LIMIT');
  });
});

/**
 * R-S16 quotas checked inside the store's commit (DeliverOptions.quota), proven with two store
 * instances on one maildrop: two MaildirStores with their own registries (what two worker
 * processes have: nothing in memory in common, only the files and their locks), and two
 * PostgresMailStores with their own pools on one database (two nodes). Many deliveries race
 * through both at once: exactly the quota's worth is kept (the R-S17 warning, stored in the
 * commit of the message that crossed its threshold, among them), the rest refused with
 * OVER_QUOTA, the usage never goes over, and the before/after usages each store reports are the
 * consecutive steps 0→1, 1→2, …, so the warning is asked for once. Regression: with the check
 * outside the commit (measured before it), every racer saw the same usage and all were accepted.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StorageError } from '../../src/errors.js';
import type { DeliveryResult, MailStore, QuotaLimit, Usage } from '../../src/storage/mail-store.js';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import { connectPostgres } from '../../src/storage/postgres/client.js';
import { migrate } from '../../src/storage/postgres/migrate.js';
import { PostgresMailStore } from '../../src/storage/postgres/pg-store.js';
import { needPostgres, startPostgres, type PostgresServer } from '../helpers/postgres.js';

const QUOTA = 10;
const RACERS = 40;

/** RACERS deliveries at once, alternating between the two stores; the outcomes, in order. */
async function race(a: MailStore, b: MailStore, quota: QuotaLimit): Promise<(DeliveryResult | 'refused')[]> {
  return Promise.all(
    Array.from({ length: RACERS }, (_, i) =>
      (i % 2 === 0 ? a : b).deliver('alice', Buffer.from(`Subject: ${i}\r\n\r\nbody ${i}\r\n`), { quota }).catch((err: unknown) => {
        if (err instanceof StorageError && err.code === 'OVER_QUOTA') return 'refused' as const;
        throw err;
      }),
    ),
  );
}

/** A quota of QUOTA messages whose warning (R-S17) is asked for when the 3rd message is accepted. */
function quotaWithWarning(): { quota: QuotaLimit; warnings: () => number } {
  let warnings = 0;
  const warn = (_before: Usage, after: Usage): Buffer | undefined => {
    if (after.messages !== 3) return undefined;
    warnings++;
    return Buffer.from('Subject: your mailbox is filling up\r\n\r\nwarning\r\n');
  };
  return { quota: { bytes: 0, messages: QUOTA, warn }, warnings: () => warnings };
}

/** QUOTA - 1 racers kept (the warning is the QUOTA-th message), the rest refused, each step seen once. */
function checkOutcomes(outcomes: (DeliveryResult | 'refused')[], warnings: number): void {
  const accepted = outcomes.filter((o): o is DeliveryResult => o !== 'refused');
  assert.equal(warnings, 1, 'one warning for the one crossing');
  assert.equal(accepted.filter((d) => d.warning !== undefined).length, 1);
  assert.equal(accepted.length, QUOTA - 1, `accepted ${accepted.length} of ${RACERS} under a quota of ${QUOTA} with a warning`);
  assert.equal(outcomes.filter((o) => o === 'refused').length, RACERS - accepted.length);
  const steps = accepted.map((d) => d.usage!.before.messages).sort((x, y) => x - y);
  assert.deepEqual(steps, [0, 1, 2, 4, 5, 6, 7, 8, 9], 'each accepted delivery saw its own step (3: the warning)');
  for (const d of accepted) assert.equal(d.usage!.after.messages, d.usage!.before.messages + 1);
  assert.equal(new Set(accepted.map((d) => d.uid)).size, accepted.length, 'distinct uids');
}

describe('R-S16 Maildir: the quota holds for two processes\' views of one maildrop', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poplar-quota-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('R-S16 R-S17 40 deliveries racing through two MaildirStores (own registries) under a quota of 10 messages with a warning at 3: exactly 9 kept and one warning, 31 refused, no file left of them', async () => {
    const root = join(dir, 'alice');
    const [a, b] = [new MaildirStore({ path: () => root }), new MaildirStore({ path: () => root })];
    try {
      const { quota, warnings } = quotaWithWarning();
      checkOutcomes(await race(a, b, quota), warnings());
      assert.deepEqual(await a.usage('alice'), await b.usage('alice'));
      assert.equal((await b.usage('alice')).messages, QUOTA, 'usage never over');
      const files = [...(await readdir(join(root, 'new'))), ...(await readdir(join(root, 'cur')))];
      assert.equal(files.length, QUOTA, 'every refused file was withdrawn');
      const snap = await a.open('alice', { exclusive: false });
      assert.equal(snap.messages.length, QUOTA);
      await snap.release();
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('R-S16 a byte quota the same way: the racers that fit are kept, never a byte over', async () => {
    const root = join(dir, 'bob');
    const [a, b] = [new MaildirStore({ path: () => root }), new MaildirStore({ path: () => root })];
    try {
      // Messages of 22 or 24 octets: a quota of 100 octets holds 4 of them, never 5.
      const outcomes = await race(a, b, { bytes: 100, messages: 0 });
      const accepted = outcomes.filter((o): o is DeliveryResult => o !== 'refused');
      const usage = await a.usage('alice');
      assert.ok(usage.bytes <= 100, `usage ${usage.bytes} octets`);
      assert.equal(usage.messages, accepted.length);
      assert.equal(accepted.length, 4);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('R-S16 PostgreSQL: the quota holds for two nodes on one database', { skip: needPostgres() }, () => {
  let pg: PostgresServer;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
  });

  it('R-S16 R-S17 40 deliveries racing through two PostgresMailStores (own pools) under a quota of 10 messages with a warning at 3: exactly 9 kept and one warning, 31 refused, nothing of them stored', async () => {
    const url = await pg.createDatabase();
    const setup = connectPostgres({ url, poolSize: 1 });
    await migrate(setup);
    await setup.end({ timeout: 1 });
    const [a, b] = [0, 1].map(() => new PostgresMailStore({ sql: connectPostgres({ url, poolSize: 8 }), ownsPool: true }));
    try {
      await a!.ready();
      await b!.ready();
      const { quota, warnings } = quotaWithWarning();
      checkOutcomes(await race(a!, b!, quota), warnings());
      assert.deepEqual(await b!.usage('alice'), await a!.usage('alice'));
      assert.equal((await a!.usage('alice')).messages, QUOTA, 'usage never over');
      const [row] = await a!.sql<{ bodies: number }[]>`SELECT count(*)::int AS bodies FROM bodies`;
      assert.equal(row!.bodies, QUOTA, 'a refused delivery rolled its body back');
    } finally {
      await a!.close();
      await b!.close();
    }
  });
});

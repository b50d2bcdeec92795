/**
 * R-X11 R-X15 between Maildir and PostgreSQL (issue 15): `poplar export` from one store and
 * `poplar import` into the other keep every UIDL a client knows, every message byte-exact and
 * the retrieved marks, in both directions.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MailStore } from '../../src/storage/mail-store.js';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import { connectPostgres } from '../../src/storage/postgres/client.js';
import { migrate } from '../../src/storage/postgres/migrate.js';
import { PostgresMailStore } from '../../src/storage/postgres/pg-store.js';
import { poplar } from '../cli/run.js';
import { addUsers } from '../helpers/poplar-process.js';
import { needPostgres, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { readAll } from '../storage/conformance.js';

interface Listed {
  uidl: string;
  seen: boolean;
  bytes: string;
}

/** What a POP3 client sees of a maildrop: UIDL (the carried one, else the uid), seen, octets. */
async function listing(store: MailStore, mailbox: string): Promise<Listed[]> {
  const snap = await store.open(mailbox, { exclusive: false });
  const out = [];
  for (const m of snap.messages) out.push({ uidl: m.uidl ?? String(m.uid), seen: m.seen, bytes: (await readAll(snap, m.id)).toString('latin1') });
  await snap.release();
  return out;
}

describe('import and export between Maildir and PostgreSQL', { skip: needPostgres() }, () => {
  let pg: PostgresServer;
  let dir: string;
  before(async () => {
    pg = await startPostgres();
    dir = await mkdtemp(join(tmpdir(), 'poplar-pgmove-'));
  });
  after(async () => {
    await pg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('R-X11 R-X15 a maildrop moves Maildir → PostgreSQL → Maildir keeping every UIDL, byte and retrieved mark', async () => {
    const url = await pg.createDatabase();
    const sql = connectPostgres({ url, poolSize: 2 });
    await migrate(sql);
    const pgStore = new PostgresMailStore({ sql, ownsPool: true });
    const dataA = join(dir, 'a');
    const dataB = join(dir, 'b');
    for (const d of [dataA, dataB]) await addUsers(d, { alice: 'wonderland' });
    const maildirA = new MaildirStore({ path: (m) => join(dataA, 'mail', m) });
    await maildirA.deliver('alice', Buffer.from('Subject: own\r\n\r\nfirst\r\n'));
    await maildirA.deliver('alice', Buffer.from('Subject: carried\n\nfrom the old server\n'), { uidl: 'AAA-0001', seen: true });
    await maildirA.deliver('alice', Buffer.from('Subject: bare CR\r\rend'), { uidl: 'x'.repeat(70) });
    const gone = await maildirA.deliver('alice', Buffer.from('Subject: deleted\r\n\r\n'));
    await maildirA.deliver('alice', Buffer.from('Subject: after a delete\r\n\r\nlast\r\n'));
    const snap = await maildirA.open('alice', { exclusive: false });
    await snap.commit({ expunge: [snap.messages.find((m) => m.uid === gone.uid)!.id], seen: [] });
    await snap.release();
    const original = await listing(maildirA, 'alice');
    await maildirA.close();
    assert.deepEqual(original.map((m) => m.uidl), ['1', 'AAA-0001', 'x'.repeat(70), '5']);

    const pgArgs = ['-o', 'storage.backend=postgres', '-o', `postgres.url=${url}`];
    const out1 = join(dir, 'out1');
    const e1 = await poplar(['export', '--data', dataA, '-u', 'alice', '--format', 'maildir', out1]);
    assert.equal(e1.code, 0, e1.stderr);
    const i1 = await poplar(['import', '--data', dataA, ...pgArgs, '-u', 'alice', out1]);
    assert.equal(i1.code, 0, i1.stderr);
    assert.match(i1.stdout, /imported 4 message\(s\).*4 kept their UIDL/);
    assert.deepEqual(await listing(pgStore, 'alice'), original, 'in PostgreSQL: the same UIDLs, octets and marks');

    const out2 = join(dir, 'out2');
    const e2 = await poplar(['export', '--data', dataA, ...pgArgs, '-u', 'alice', '--format', 'maildir', out2]);
    assert.equal(e2.code, 0, e2.stderr);
    const i2 = await poplar(['import', '--data', dataB, '-u', 'alice', out2]);
    assert.equal(i2.code, 0, i2.stderr);
    const maildirB = new MaildirStore({ path: (m) => join(dataB, 'mail', m) });
    assert.deepEqual(await listing(maildirB, 'alice'), original, 'back in a Maildir: still the same');
    await maildirB.close();
    await pgStore.close();
  });
});

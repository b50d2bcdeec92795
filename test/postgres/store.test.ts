/**
 * PostgreSQL store cases the conformance suite cannot show (issue 15): what happens between
 * transactions of several sessions and nodes on one database.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connectPostgres, type Sql } from '../../src/storage/postgres/client.js';
import { migrate } from '../../src/storage/postgres/migrate.js';
import { BODY_CHUNK, INLINE_BODY_MAX } from '../../src/storage/postgres/pg-bodies.js';
import { PostgresMailStore } from '../../src/storage/postgres/pg-store.js';
import { needPostgres } from '../helpers/postgres.js';
import { postgresInSuite } from '../helpers/pg-pool.js';

describe('PostgreSQL store between sessions', { skip: needPostgres() }, () => {
  const { server, track } = postgresInSuite();

  async function stores(): Promise<{ url: string; raw: Sql; store: PostgresMailStore }> {
    const url = await server().createDatabase();
    const raw = connectPostgres({ url, poolSize: 2 });
    track(raw);
    await migrate(raw);
    const store = new PostgresMailStore({ sql: connectPostgres({ url, poolSize: 4 }), ownsPool: true });
    return { url, raw, store };
  }

  it('R-X6 R-X18 a delivery PostgreSQL aborts to break a deadlock with a sweep is run again and stored once', async () => {
    const { raw, store } = await stores();
    // A body over INLINE_BODY_MAX is attached before the maildrop's row is locked (a smaller one
    // is attached after it, in the order a sweep locks: it waits instead).
    const body = Buffer.concat([Buffer.from('Subject: shared\r\n\r\n'), Buffer.alloc(INLINE_BODY_MAX + 10, 'o')]);
    await store.deliver('bob', body); // the body exists: alice's delivery will find it
    await store.create('alice');
    let delivery: Promise<{ uid: number; size: number }> | undefined;
    await raw.begin(async (tx) => {
      // As a retention sweep does: the maildrop's row first, then the bodies of its messages.
      // This side waits 10 s before checking for a deadlock, the delivery 1 s: the delivery is
      // the transaction PostgreSQL aborts.
      await tx`SET LOCAL deadlock_timeout = '10s'`;
      await tx`SELECT id FROM maildrops WHERE name = 'alice' FOR UPDATE`;
      delivery = store.deliver('alice', body);
      delivery.catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300)); // it holds the body and waits for the maildrop
      await tx`SELECT id FROM bodies FOR UPDATE`;
    });
    const r = await delivery!;
    assert.equal(r.uid, 1);
    const [counts] = await raw<{ messages: number; bodies: number }[]>`
      SELECT (SELECT count(*) FROM messages)::int AS messages, (SELECT count(*) FROM bodies)::int AS bodies`;
    assert.deepEqual(counts, { messages: 2, bodies: 1 });
    await store.close();
  });

  it('R-S3 R-S11 two stores (two nodes): a message one session removed is -ERR to the other, whose commit then removes the rest', async () => {
    const { url, store } = await stores();
    const other = new PostgresMailStore({ sql: connectPostgres({ url, poolSize: 2 }), ownsPool: true });
    for (const b of ['one\r\n', 'two\r\n', 'three\r\n']) await store.deliver('alice', Buffer.from(b));
    const s1 = await store.open('alice', { exclusive: false });
    const s2 = await other.open('alice', { exclusive: false });
    await s2.commit({ expunge: [s2.messages[0]!.id], seen: [s2.messages[1]!.id], hide: [] });
    await s2.release();
    await assert.rejects(s1.read(s1.messages[0]!.id), (e: Error & { code?: string }) => e.code === 'MESSAGE_GONE');
    await s1.commit({ expunge: [s1.messages[0]!.id, s1.messages[2]!.id], seen: [] });
    await s1.release();
    const after = await other.open('alice', { exclusive: false });
    assert.deepEqual(after.messages.map((m) => [m.uid, m.seen]), [[2, true]]);
    await after.release();
    assert.equal((await store.expire('alice', () => false)).inUse, false, 'every claim was released');
    await other.close();
    await store.close();
  });
});

/**
 * Delivery on PostgreSQL (issue 15 "Performance": LMTP deliveries ≥ Dovecot's): every statement
 * the pool sends is counted (postgres.js `debug`, called for each one, BEGIN and COMMIT included).
 * Before, a delivery was BEGIN, INSERT bodies, SELECT bodies, UPDATE maildrops, INSERT messages,
 * COMMIT (and a COUNT/SUM over every message of the maildrop with a quota), each a round trip,
 * and LMTP asked the directory up to four times per recipient. Now it is one statement
 * (poplar_deliver, migrations/004-delivery.sql), the usage is kept on the maildrop's row, and the
 * recipient is looked up once, at RCPT.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import postgres from 'postgres';
import { PostgresDirectory } from '../../src/auth/postgres-directory.js';
import { DeliveryAgent } from '../../src/delivery/agent.js';
import { LmtpListener } from '../../src/delivery/lmtp/lmtp-listener.js';
import { createLogger } from '../../src/observability/logger.js';
import { PostgresOverrides } from '../../src/policy/postgres-user-policy.js';
import { UserPolicies, type EffectivePolicy } from '../../src/policy/user-policy.js';
import { crlfSize } from '../../src/protocol/crlf.js';
import type { Sql } from '../../src/storage/postgres/client.js';
import { loadMigrations, migrate } from '../../src/storage/postgres/migrate.js';
import { BODY_CHUNK, INLINE_BODY_MAX } from '../../src/storage/postgres/pg-bodies.js';
import { PostgresMailStore } from '../../src/storage/postgres/pg-store.js';
import { needPostgres } from '../helpers/postgres.js';
import { postgresInSuite } from '../helpers/pg-pool.js';
import { waitFor } from '../helpers/wait.js';

const NONE: EffectivePolicy = { quotaBytes: 0, quotaMessages: 0, retrievedDays: 0, unretrievedDays: 0, loginDelay: 0, downloadBytesPerDay: 0 };

/** A pool (the int8 mapping of client.ts) whose statements are recorded in `sent`. */
function recorded(url: string): { sql: Sql; sent: string[] } {
  const sent: string[] = [];
  const sql = postgres(url, {
    max: 4,
    onnotice: () => undefined,
    types: { int8: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) } },
    debug: (_connection, query) => sent.push(query.replace(/\s+/g, ' ').trim()),
  }) as unknown as Sql;
  return { sql, sent };
}

/** What `fn` sent. */
async function sentBy(sent: string[], fn: () => Promise<unknown>): Promise<string[]> {
  const from = sent.length;
  await fn();
  return sent.slice(from);
}

/** The usage kept on the row beside the one its messages add up to. */
async function usages(sql: Sql, name: string): Promise<{ kept: unknown; counted: unknown }> {
  const [row] = await sql<{ kept: unknown; counted: unknown }[]>`
    SELECT json_build_array(d.messages, d.octets) AS kept,
           json_build_array((SELECT count(*) FROM messages m WHERE m.maildrop_id = d.id),
                            (SELECT coalesce(sum(size), 0) FROM messages m WHERE m.maildrop_id = d.id)) AS counted
      FROM maildrops d WHERE d.name = ${name}`;
  return row!;
}

const msg = (n: number, body = `body ${n}\r\n`): Buffer => Buffer.from(`Subject: ${n}\r\n\r\n${body}`);

describe('PostgreSQL delivery statements', { skip: needPostgres() }, () => {
  const { server, track } = postgresInSuite();

  async function fresh(): Promise<{ sql: Sql; sent: string[]; store: PostgresMailStore; url: string }> {
    const url = await server().createDatabase();
    const { sql, sent } = recorded(url);
    track(sql);
    await migrate(sql);
    const store = new PostgresMailStore({ sql });
    await store.ready();
    return { sql, sent, store, url };
  }

  it('R-X6 R-X18 R-S12 a delivery without a quota whose body is at most INLINE_BODY_MAX is one statement, first delivery of a maildrop included (regression: BEGIN, four statements, COMMIT: six round trips)', async () => {
    const { sql, sent, store } = await fresh();
    const trace = Buffer.from('Received: by test\r\n');
    const first = await sentBy(sent, () => store.deliver('alice', Buffer.concat([trace, msg(1)]), { bodyOffset: trace.length }));
    assert.equal(first.length, 1, first.join('\n'));
    assert.match(first[0]!, /poplar_deliver/);
    // The same body again (another recipient of one LMTP transaction), to another maildrop: found, not stored again.
    const other = Buffer.from('Received: by other\r\n');
    const again = await sentBy(sent, () => store.deliver('bob', Buffer.concat([other, msg(1)]), { bodyOffset: other.length }));
    assert.equal(again.length, 1, again.join('\n'));
    const r = await store.deliver('alice', msg(2));
    assert.equal(r.uid, 2, 'R-S12 the next uid');
    const [counts] = await sql<{ bodies: number; chunks: number; messages: number }[]>`
      SELECT (SELECT count(*) FROM bodies)::int AS bodies, (SELECT count(*) FROM body_chunks)::int AS chunks, (SELECT count(*) FROM messages)::int AS messages`;
    assert.deepEqual({ ...counts }, { bodies: 2, chunks: 2, messages: 3 }, 'R-X18 the shared body once');
    const s = await store.open('bob', { exclusive: false });
    const got: Buffer[] = [];
    for await (const c of await s.read(s.list.id(0))) got.push(c as Buffer);
    assert.equal(Buffer.concat(got).toString('latin1'), `Received: by other\r\n${msg(1).toString('latin1')}`);
    await s.release();
    await store.close();
  });

  it('R-X17 R-X18 a body of several rows (full BODY_CHUNK rows and a tail) is one statement too, stored in the rows rowStarts gives and read back byte-exact (regression: one row of the whole body, TOAST)', async () => {
    const { sql, sent, store } = await fresh();
    const body = Buffer.from(Array.from({ length: BODY_CHUNK * 2 + 3000 }, (_, i) => 0x41 + (i % 26)));
    const m = Buffer.concat([Buffer.from('Subject: rows\r\n\r\n'), body, Buffer.from('\r\n')]); // 19,259 octets
    const statements = await sentBy(sent, () => store.deliver('alice', m));
    assert.equal(statements.length, 1, statements.join('\n'));
    const rows = await sql<{ seq: number; n: number }[]>`SELECT seq, length(data)::int AS n FROM body_chunks ORDER BY seq`;
    // 19,259 = 2 × 8,120 + 3,019: two full rows, the tail in two rows of at most TAIL_CHUNK.
    assert.deepEqual(rows.map((r) => r.n), [BODY_CHUNK, BODY_CHUNK, 1510, 1509]);
    const [b] = await sql<{ chunk_octets: number }[]>`SELECT chunk_octets FROM bodies`;
    assert.equal(b!.chunk_octets, BODY_CHUNK);
    const s = await store.open('alice', { exclusive: false });
    const got: Buffer[] = [];
    for await (const c of await s.read(s.list.id(0))) got.push(Buffer.from(c as Buffer));
    assert.ok(Buffer.concat(got).equals(m), 'byte-exact');
    await s.release();
    await store.close();
  });

  it('R-S16 R-S17 with a quota: one statement, or BEGIN, one, COMMIT with warnings, and one more for a warning; the check reads the usage kept on the row, not the messages (regression: a COUNT/SUM over every message per delivery)', async () => {
    const { sent, store } = await fresh();
    const m = msg(1, 'x'.repeat(100));
    const size = crlfSize(m);
    const quota = { bytes: size * 4, messages: 0 };
    // Without warnings (quota.warn_percent = []): one statement, the check inside it.
    const plain = await sentBy(sent, () => store.deliver('alice', m, { quota }));
    assert.equal(plain.length, 1, plain.join('\n'));
    assert.ok(!plain.some((q) => /count\(|sum\(/i.test(q)), 'no scan of the messages');
    let warned = 0;
    const quiet = await sentBy(sent, () => store.deliver('carol', m, { quota: { ...quota, warn: () => undefined } }));
    assert.deepEqual(quiet.map((q) => q.split(' ')[0]!.toLowerCase()), ['begin', 'select', 'commit'], quiet.join('\n'));
    const warn = (before: { bytes: number }, after: { bytes: number }): Buffer | undefined =>
      before.bytes < size * 2 && after.bytes >= size * 2 ? (warned++, Buffer.from('Subject: warning\r\n\r\nhalf full\r\n')) : undefined;
    const crossing = await sentBy(sent, () => store.deliver('alice', m, { quota: { ...quota, warn } }));
    assert.equal(warned, 1);
    assert.deepEqual(crossing.map((q) => q.split(' ')[0]!.toLowerCase()), ['begin', 'select', 'select', 'commit'], crossing.join('\n'));
    // 2 messages + the warning: the next one fits (4 × size), the one after does not.
    await store.deliver('alice', m, { quota: { ...quota, warn } });
    await assert.rejects(store.deliver('alice', m, { quota }), (e: Error & { code?: string }) => e.code === 'OVER_QUOTA');
    await assert.rejects(store.deliver('alice', m, { quota: { ...quota, warn } }), (e: Error & { code?: string }) => e.code === 'OVER_QUOTA');
    const usage = await store.usage('alice');
    assert.equal(usage.messages, 4, 'nothing written by the refused deliveries');
    await store.close();
  });

  it('R-S16 the usage kept on the maildrop row matches its messages after deliveries, a large body, import, a warning, QUIT deletes, hides and retention', async () => {
    const { sql, store } = await fresh();
    const quota = { bytes: 0, messages: 100, warn: (_b: unknown, a: { messages: number }) => (a.messages === 3 ? Buffer.from('Subject: w\r\n\r\nw\r\n') : undefined) };
    for (let n = 1; n <= 4; n++) await store.deliver('alice', msg(n), { quota });
    await store.deliver('alice', Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), Buffer.alloc(INLINE_BODY_MAX + 5, 'y')]));
    // As `poplar import` delivers: a carried uid and UIDL, seen, the original arrival time.
    await store.deliver('alice', msg(9), { uid: 40, uidl: 'old-uidl-1', seen: true, received: Date.now() - 86_400_000 * 30 });
    assert.deepEqual((await usages(sql, 'alice')).kept, (await usages(sql, 'alice')).counted);
    const s = await store.open('alice', { exclusive: false });
    const ids = Array.from({ length: s.list.length }, (_, i) => s.list.id(i));
    await s.commit({ expunge: [ids[0]!, ids[5]!, 'missing'], seen: [ids[1]!], hide: [ids[2]!] });
    await s.release();
    const afterQuit = await usages(sql, 'alice');
    assert.deepEqual(afterQuit.kept, afterQuit.counted);
    assert.equal((afterQuit.kept as number[])[0], ids.length - 2, 'the hidden message still counts');
    // A second session that saw a message the first one removed: nothing counted twice.
    const late = await store.open('alice', { exclusive: false });
    const other = await store.open('alice', { exclusive: false });
    await late.commit({ expunge: [late.list.id(0)], seen: [] });
    await other.commit({ expunge: [other.list.id(0)], seen: [] });
    await late.release();
    await other.release();
    const twice = await usages(sql, 'alice');
    assert.deepEqual(twice.kept, twice.counted);
    const swept = await store.expire('alice', (c) => c.hidden || c.seen);
    assert.ok(swept.removed.length >= 2);
    const afterSweep = await usages(sql, 'alice');
    assert.deepEqual(afterSweep.kept, afterSweep.counted);
    assert.deepEqual(await store.usage('alice'), { messages: (afterSweep.kept as number[])[0], bytes: (afterSweep.kept as number[])[1] });
    await store.close();
  });

  it('R-S16 migration 004 fills in the usage of maildrops that had mail before it', async () => {
    const url = await server().createDatabase();
    const { sql } = recorded(url);
    track(sql);
    const all = await loadMigrations();
    await migrate(sql, all.filter((m) => m.version < 4 || m.version >= 100));
    const [body] = await sql<{ id: number }[]>`INSERT INTO bodies (sha256, octets) VALUES ('\\x01', 3) RETURNING id`;
    for (const [name, sizes] of [['alice', [10, 20, 30]], ['bob', [7]], ['carol', []]] as const) {
      const [d] = await sql<{ id: number }[]>`INSERT INTO maildrops (name, next_uid) VALUES (${name}, ${sizes.length + 1}) RETURNING id`;
      for (const [i, size] of sizes.entries()) {
        await sql`INSERT INTO messages (maildrop_id, uid, body_id, size, head, received_at) VALUES (${d!.id}, ${i + 1}, ${body!.id}, ${size}, '\\x', now())`;
      }
    }
    await migrate(sql, all);
    const rows = await sql<{ name: string; messages: number; octets: number }[]>`SELECT name, messages, octets FROM maildrops ORDER BY name`;
    assert.deepEqual(rows.map((r) => ({ ...r })), [
      { name: 'alice', messages: 3, octets: 60 },
      { name: 'bob', messages: 1, octets: 7 },
      { name: 'carol', messages: 0, octets: 0 },
    ]);
  });

  it('R-X6 an LMTP recipient is looked up in the PostgreSQL directory once, at RCPT, in one query for its candidate names (regression: a query per candidate name, user@domain then user, at RCPT and again at DATA: 8 here instead of 2)', async () => {
    const { sql, sent, store } = await fresh();
    const directory = new PostgresDirectory(sql);
    await directory.add('alice', '{PLAIN}secret');
    const agent = new DeliveryAgent({
      store, directory, policies: new UserPolicies(new PostgresOverrides(sql), NONE), logger: createLogger('silent'),
      hostname: 'test.example', overQuota: 'reject', warnPercent: [], recipientDelimiter: '+',
    });
    const lmtp = new LmtpListener(agent, { hostname: 'test.example', maxMessageSize: 1 << 20, maxRecipients: 10 }, createLogger('silent'));
    await lmtp.listen([{ host: '127.0.0.1', port: 0 }]);
    try {
      const from = sent.length;
      const s = connect({ port: lmtp.addresses()[0]!.port, host: '127.0.0.1' });
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      await once(s, 'connect');
      const replies = (): string[] => got.split('\r\n').filter((l) => /^\d{3} /.test(l));
      const step = async (line: string, n: number): Promise<void> => {
        s.write(line);
        await waitFor(() => replies().length >= n, 10_000, line);
      };
      await waitFor(() => replies().length >= 1, 10_000, 'greeting');
      await step('LHLO test\r\n', 2);
      await step('MAIL FROM:<s@example.org>\r\n', 3);
      await step('RCPT TO:<alice+news@example.org>\r\n', 4);
      await step('RCPT TO:<nobody@example.org>\r\n', 5);
      await step('DATA\r\n', 6);
      await step('Subject: hi\r\n\r\nhello\r\n.\r\n', 7);
      s.destroy();
      assert.match(replies()[3]!, /^250 /);
      assert.match(replies()[4]!, /^550 /);
      assert.match(replies()[6]!, /^250 .*uid 1/);
      const lookups = sent.slice(from).filter((q) => /FROM users u/.test(q));
      assert.equal(lookups.length, 2, `one per RCPT:\n${lookups.join('\n')}`);
      assert.equal((await store.usage('alice')).messages, 1);
    } finally {
      await lmtp.close();
      await store.close();
    }
  });
});

/**
 * How bodies are stored and read back on PostgreSQL (issue 15, R-X17 RETR throughput, R-X9
 * bounded memory, R-S3). Bodies are written in rows of BODY_CHUNK octets kept whole in their
 * heap page (migrations/003-body-storage.sql), and read about a MiB of rows per query into
 * pooled buffers. Regression: before, each body was cut into 256 KiB rows that PostgreSQL moved
 * out of line (TOAST, ~2 KB pieces fetched through an index), and every row reached the server as
 * two fresh buffers (postgres.js assembling the 256 KiB message, then copying the value out):
 * ~2 GB of garbage per GB sent, and V8's full collections, the largest part of RETR's CPU.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { releaseChunk } from '../../src/protocol/chunk-pool.js';
import { RETR_READ_CHUNK } from '../../src/protocol/limits.js';
import type { MessageSource } from '../../src/storage/mail-store.js';
import { connectPostgres, type Sql } from '../../src/storage/postgres/client.js';
import { migrate } from '../../src/storage/postgres/migrate.js';
import { BODY_CHUNK, bodyHash, FETCH_OCTETS, rowStarts, TAIL_CHUNK } from '../../src/storage/postgres/pg-bodies.js';
import { PostgresMailStore } from '../../src/storage/postgres/pg-store.js';
import { needPostgres } from '../helpers/postgres.js';
import { countedQueries, postgresInSuite } from '../helpers/pg-pool.js';

/** A body of `size` octets of numbered lines, some starting with a dot. */
function body(size: number): Buffer {
  const out = Buffer.alloc(size);
  let at = 0;
  for (let i = 0; at < size; i++) at += out.write(`${i % 7 === 0 ? '.' : ''}line ${i} of a body in many rows\r\n`, at);
  return out;
}

/** Every chunk of `source`, hashed; each chunk's size and whether it came from a pool (checked by releasing it). */
async function drain(source: MessageSource): Promise<{ sha: string; sizes: number[] }> {
  const hash = createHash('sha256');
  const sizes: number[] = [];
  for (;;) {
    let chunk = source.next();
    if (chunk instanceof Promise) chunk = await chunk;
    if (chunk === undefined) break;
    hash.update(chunk);
    sizes.push(chunk.length);
    releaseChunk(chunk);
  }
  return { sha: hash.digest('hex'), sizes };
}

describe('PostgreSQL body rows', { skip: needPostgres() }, () => {
  const { server, track } = postgresInSuite();

  async function stores(): Promise<{ raw: Sql; store: PostgresMailStore; count: { n: number } }> {
    const url = await server().createDatabase();
    const raw = connectPostgres({ url, poolSize: 2 });
    track(raw);
    await migrate(raw);
    const { sql, count } = countedQueries(connectPostgres({ url, poolSize: 4 }));
    return { raw, store: new PostgresMailStore({ sql, ownsPool: true }), count };
  }

  it('R-X17 R-X9 a 3 MB body is stored in BODY_CHUNK rows with nothing out of line, and RETR reads it byte-exact over several batches in RETR_READ_CHUNK pieces', async () => {
    const { raw, store } = await stores();
    const head = Buffer.from('Received: from test\r\n');
    const b = body(3 * 1024 * 1024 + 12345);
    const message = Buffer.concat([head, b]);
    await store.deliver('alice', message, { bodyOffset: head.length });
    const [rows] = await raw<{ n: number; widest: number; toast: number }[]>`
      SELECT count(*)::int AS n, max(octet_length(data))::int AS widest,
             (SELECT pg_relation_size(reltoastrelid)::float8 FROM pg_class WHERE relname = 'body_chunks') AS toast
      FROM body_chunks`;
    assert.equal(rows!.toast, 0, 'nothing in body_chunks\' TOAST table: every row whole in its heap page');
    assert.ok(BODY_CHUNK <= 8120, `rows of ${BODY_CHUNK} octets fit a heap page`);
    assert.deepEqual(rows, { n: rowStarts(b.length).length, widest: BODY_CHUNK, toast: 0 });
    const [{ chunk } = { chunk: 0 }] = await raw<{ chunk: number }[]>`SELECT chunk_octets AS chunk FROM bodies`;
    assert.equal(chunk, BODY_CHUNK, 'the body records its row size');
    // A small body (the tail of any body) in equal rows of at most TAIL_CHUNK, which pack four to a page.
    const small = body(5000);
    await store.deliver('dave', small);
    const tail = await raw<{ n: number }[]>`SELECT octet_length(c.data)::int AS n FROM body_chunks c JOIN bodies b ON b.id = c.body_id
      WHERE b.octets = ${small.length} ORDER BY c.seq`;
    assert.deepEqual(tail.map((r) => r.n), [1667, 1667, 1666]);
    assert.ok(TAIL_CHUNK >= 1667);

    const snapshot = await store.open('alice', { exclusive: false });
    const got = await drain(await snapshot.open!(snapshot.list.id(0), 0));
    assert.equal(got.sha, createHash('sha256').update(message).digest('hex'), 'byte-exact');
    assert.equal(got.sizes[0], head.length, 'the head first');
    assert.ok(got.sizes.slice(1).every((n) => n > 0 && n <= RETR_READ_CHUNK), `pieces of at most RETR_READ_CHUNK: ${got.sizes.join(' ')}`);
    assert.ok(got.sizes.length - 1 >= Math.ceil(b.length / RETR_READ_CHUNK), 'the body in several pieces');
    await snapshot.release();
    await store.close();
  });

  it('R-X17 R-X9 a body in the 256 KiB rows an older poplar wrote reads byte-exact, four rows a query', async () => {
    const { raw, store, count } = await stores();
    const b = body(2 * 1024 * 1024 + 777);
    const old = 256 * 1024;
    // The rows as 001's poplar wrote them: chunk_octets left at its default, 256 KiB out of line.
    const [{ id } = { id: 0 }] = await raw<{ id: number }[]>`INSERT INTO bodies (sha256, octets) VALUES (${bodyHash(b)}, ${b.length}) RETURNING id`;
    for (let seq = 0, at = 0; at < b.length; seq++, at += old) {
      await raw`INSERT INTO body_chunks (body_id, seq, data) VALUES (${id}, ${seq}, ${b.subarray(at, at + old)})`;
    }
    await store.deliver('bob', b); // the same octets: the delivery finds and shares the old body
    const [shared] = await raw<{ bodies: number; chunk: number }[]>`SELECT count(*)::int AS bodies, min(chunk_octets) AS chunk FROM bodies`;
    assert.deepEqual(shared, { bodies: 1, chunk: old });
    const snapshot = await store.open('bob', { exclusive: false });
    const before = count.n;
    const got = await drain(await snapshot.open!(snapshot.list.id(0), 0));
    assert.equal(got.sha, createHash('sha256').update(b).digest('hex'), 'byte-exact');
    const rows = Math.ceil(b.length / old);
    assert.equal(count.n - before, Math.ceil(rows / (FETCH_OCTETS / old)), `${rows} rows of 256 KiB, four a query`);
    await snapshot.release();
    await store.close();
  });

  it('R-S3 R-X9 a body removed by another session while RETR reads it fails MESSAGE_GONE at the next batch, and what was sent is the message\'s start', async () => {
    const { store } = await stores();
    const b = body(4 * FETCH_OCTETS + 5000);
    await store.deliver('carol', b);
    const reader = await store.open('carol', { exclusive: false });
    const source = await reader.open!(reader.list.id(0), 0);
    let first = source.next();
    if (first instanceof Promise) first = await first;
    assert.ok(first !== undefined && b.subarray(0, first.length).equals(first), 'the first piece is the body\'s start');
    const remover = await store.open('carol', { exclusive: false });
    await remover.commit({ expunge: [remover.list.id(0)], seen: [] });
    await remover.release();
    let sent = first.length;
    await assert.rejects(async () => {
      for (;;) {
        let chunk = source.next();
        if (chunk instanceof Promise) chunk = await chunk;
        if (chunk === undefined) break;
        assert.ok(b.subarray(sent, sent + chunk.length).equals(chunk), 'each piece continues the body');
        sent += chunk.length;
      }
    }, (e: Error & { code?: string }) => e.code === 'MESSAGE_GONE');
    assert.ok(sent < b.length, `stopped at ${sent} of ${b.length} octets`);
    source.close();
    await reader.release();
    await store.close();
  });
});

/**
 * RETR from PostgreSQL (issue 15, R-X17 throughput, R-X9 bounded memory): every query the store
 * sends is counted (a Proxy on the pool's tagged-template calls). A 5 MiB body is 647 rows of
 * body_chunks (645 of BODY_CHUNK octets and two tail rows, stored inline): the opening query brings the head and the
 * first FETCH_OCTETS of rows, each later query as many more, and the chunks of a batch are handed
 * out without waiting, gathered into pooled buffers of RETR_READ_CHUNK octets. Before, RETR sent
 * one query per row (21 for this message, of 256 KiB rows) and waited for each: on a loaded
 * machine the round trips, not the octets, set the MB/s (0.07-0.27× of Maildir poplar's).
 * Bodies in the rows an older poplar wrote (256 KiB, out of line) read the same, four rows a
 * query.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { connectPostgres, type Sql } from '../../src/storage/postgres/client.js';
import { migrate } from '../../src/storage/postgres/migrate.js';
import { RETR_READ_CHUNK } from '../../src/protocol/limits.js';
import { BODY_CHUNK, rowStarts, rowsPerFetch } from '../../src/storage/postgres/pg-bodies.js';
import { PostgresMailStore } from '../../src/storage/postgres/pg-store.js';
import { needPostgres, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { countedQueries } from '../helpers/pg-pool.js';

describe('RETR queries on PostgreSQL', { skip: needPostgres() }, () => {
  let pg: PostgresServer;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
  });

  it('R-X17 R-X9 RETR of a 5 MiB message sends one query per ~1 MiB of body rows, the first batch with the head, and the batch\'s chunks come without waiting', async () => {
    const url = await pg.createDatabase();
    const { sql, count } = countedQueries(connectPostgres({ url, poolSize: 4 }));
    await migrate(sql);
    const store = new PostgresMailStore({ sql, ownsPool: true });
    try {
      const head = Buffer.from('Received: from test\r\n');
      const body = Buffer.alloc(5 * 1024 * 1024, 'line of a big body\r\n');
      const message = Buffer.concat([head, body]);
      await store.deliver('alice', message, { bodyOffset: head.length });
      const snapshot = await store.open('alice', { exclusive: false });
      const before = count.n;
      const source = await snapshot.open!(snapshot.list.id(0), 0);
      const hash = createHash('sha256');
      let waited = 0;
      let chunks = 0;
      for (;;) {
        let chunk = source.next();
        if (chunk instanceof Promise) {
          waited++;
          chunk = await chunk;
        }
        if (chunk === undefined) break;
        hash.update(chunk);
        chunks++;
      }
      const starts = rowStarts(body.length);
      const rows = starts.length;
      const perFetch = rowsPerFetch(BODY_CHUNK);
      const batches = Math.ceil(rows / perFetch);
      // Each batch is handed out in RETR_READ_CHUNK pieces, the last one of a batch shorter.
      let pieces = 0;
      for (let b = 0; b < batches; b++) {
        const octets = (starts[(b + 1) * perFetch] ?? body.length) - starts[b * perFetch]!;
        pieces += Math.ceil(octets / RETR_READ_CHUNK);
      }
      assert.equal(hash.digest('hex'), createHash('sha256').update(message).digest('hex'), 'byte-exact');
      assert.equal(chunks, 1 + pieces, 'the head, then each batch in pooled pieces');
      assert.equal(count.n - before, batches, `${rows} rows in ${batches} queries (the first with the head)`);
      assert.equal(waited, batches - 1, 'a wait per batch after the first, none per chunk');
      await snapshot.release();
    } finally {
      await store.close();
    }
  });
});

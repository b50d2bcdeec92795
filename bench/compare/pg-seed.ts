/**
 * `node dist/bench/compare/pg-seed.js --url URL USER=MAILDIR …`: hands the Maildirs a bench
 * scenario seeded to the PostgreSQL-backed poplar (bench:compare's `poplar-pg`), in one process for
 * all users: each user's maildrop is emptied (MailStore.expire of every message), then filled.
 *
 * - A Maildir whose messages carry no UIDL (what the bench seeds) is loaded in bulk: the rows a
 *   delivery of each file would write (pg-store.ts deliver with no bodyOffset: the whole message
 *   is the body, stored once per distinct octets, in the rows rowStarts gives; the exact CRLF size; uids
 *   1, 2, … in readMaildirSource's order; received = the file's mtime, retrieved_at = received for
 *   a file with the S flag), BATCH messages per multi-row INSERT, one transaction per user. The
 *   50k-message bigbox took minutes as 50,000 deliveries and takes seconds so.
 * - Any other Maildir goes through `poplar import`'s importMail (UIDLs carried as it carries them).
 *
 * The seeding connection runs with synchronous_commit = off, and a CHECKPOINT at the end writes
 * everything out before the measured runs start. The server's own connections keep
 * synchronous_commit = on.
 */
import { createLogger } from '../../src/observability/logger.js';
import { importMail } from '../../src/migrate/import.js';
import { readMaildirSource, readSourceFile, type SourceMessage } from '../../src/migrate/maildir-source.js';
import { crlfSize } from '../../src/protocol/crlf.js';
import { connectPostgres, type Sql } from '../../src/storage/postgres/client.js';
import { BODY_CHUNK, bodyHash, rowEnds, rowStarts } from '../../src/storage/postgres/pg-bodies.js';
import { PostgresMailStore } from '../../src/storage/postgres/pg-store.js';
import { parseArgs } from '../args.js';

/** Messages per multi-row INSERT (9 parameters a row, far below PostgreSQL's 65,535). */
const BATCH = 2000;

interface Row {
  bytes: Buffer;
  sha256: Buffer;
  size: number;
  seen: boolean;
  received: Date;
}

/** A message file as the rows of its delivery need it. */
async function rowOf(m: SourceMessage): Promise<Row> {
  const bytes = await readSourceFile(m.path);
  return { bytes, sha256: bodyHash(bytes), size: crlfSize(bytes), seen: m.seen, received: new Date(m.received) };
}

/**
 * Loads a maildrop emptied before (uids from its next_uid on) with the rows deliveries of the
 * `source` files would write, reading BATCH files at a time.
 */
async function bulkLoad(sql: Sql, user: string, source: readonly SourceMessage[]): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`INSERT INTO maildrops (name) VALUES (${user}) ON CONFLICT (name) DO NOTHING`;
    const [drop] = await tx<{ id: number; first: number }[]>`
      UPDATE maildrops SET next_uid = next_uid + ${source.length} WHERE name = ${user} RETURNING id, next_uid - ${source.length} AS first`;
    const bodyIds = new Map<string, number>();
    for (let at = 0; at < source.length; at += BATCH) {
      const batch = await Promise.all(source.slice(at, at + BATCH).map(rowOf));
      const fresh = new Map<string, Row>();
      for (const r of batch) if (!bodyIds.has(r.sha256.toString('hex'))) fresh.set(r.sha256.toString('hex'), r);
      if (fresh.size > 0) {
        const bodies = [...fresh.values()].map((r) => ({ sha256: r.sha256, octets: r.bytes.length, chunk_octets: BODY_CHUNK }));
        await tx`INSERT INTO bodies ${tx(bodies, 'sha256', 'octets', 'chunk_octets')} ON CONFLICT (sha256) DO NOTHING`;
        const found = await tx<{ id: number; sha256: Buffer }[]>`SELECT id, sha256 FROM bodies WHERE sha256 = ANY(${bodies.map((b) => b.sha256)}::bytea[])`;
        const stored = await tx<{ body_id: number }[]>`SELECT DISTINCT body_id FROM body_chunks WHERE body_id = ANY(${found.map((f) => f.id)}::bigint[])`;
        const hasChunks = new Set(stored.map((s) => s.body_id));
        const chunks: { body_id: number; seq: number; data: Buffer }[] = [];
        for (const f of found) {
          const hex = f.sha256.toString('hex');
          bodyIds.set(hex, f.id);
          const r = fresh.get(hex)!;
          if (hasChunks.has(f.id)) continue;
          const starts = rowStarts(r.bytes.length);
          const ends = rowEnds(starts, r.bytes.length);
          starts.forEach((o, seq) => chunks.push({ body_id: f.id, seq, data: r.bytes.subarray(o, ends[seq]) }));
        }
        for (let c = 0; c < chunks.length; c += BATCH) await tx`INSERT INTO body_chunks ${tx(chunks.slice(c, c + BATCH), 'body_id', 'seq', 'data')}`;
      }
      const messages = batch.map((r, i) => ({
        maildrop_id: drop!.id,
        uid: drop!.first + at + i,
        body_id: bodyIds.get(r.sha256.toString('hex'))!,
        size: r.size,
        head: Buffer.alloc(0),
        uidl: null,
        received_at: r.received,
        retrieved_at: r.seen ? r.received : null,
      }));
      await tx`INSERT INTO messages ${tx(messages, 'maildrop_id', 'uid', 'body_id', 'size', 'head', 'uidl', 'received_at', 'retrieved_at')}`;
      // The maildrop's usage, as poplar_deliver keeps it (migrations/004-delivery.sql).
      await tx`UPDATE maildrops SET messages = messages + ${messages.length}, octets = octets + ${messages.reduce((n, m) => n + m.size, 0)} WHERE id = ${drop!.id}`;
    }
  });
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const url = a.str('url', '');
  if (url === '') throw new Error('--url is required');
  const seeding = `${url}${url.includes('?') ? '&' : '?'}synchronous_commit=off`;
  const sql = connectPostgres({ url: seeding, poolSize: 2, statementTimeout: 0 });
  const store = new PostgresMailStore({ sql, ownsPool: true });
  const logger = createLogger('warn', process.stderr);
  try {
    await store.ready();
    for (const pair of a.positional) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new Error(`expected USER=MAILDIR, got ${pair}`);
      const user = pair.slice(0, eq);
      const maildir = pair.slice(eq + 1);
      // A session of the previous run may still be closing (its claim is released just after).
      for (let i = 0; (await store.expire(user, () => true)).inUse; i++) {
        if (i === 50) throw new Error(`${user}: maildrop still in use after 5 s, cannot empty it`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const source = await readMaildirSource(maildir);
      if (source.some((m) => m.uidl !== undefined)) {
        await importMail(store, user, maildir, 'maildir', logger);
        continue;
      }
      await bulkLoad(sql, user, source);
    }
    await sql`CHECKPOINT`;
  } finally {
    await store.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`pg-seed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

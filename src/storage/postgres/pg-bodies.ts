/**
 * Message bodies in PostgreSQL (R-X18, R-X9): a body is stored once for every message with the
 * same octets, keyed by SHA-256, in rows of at most BODY_CHUNK octets (`body_chunks`), and read
 * back about a MiB of rows per query (BodySource), so RETR of a 50 MB message holds two batches
 * of rows (~2 MiB), never the message.
 *
 * Reference rule, without a counter to keep: a body lives while a `messages` row names it.
 * - Attaching (a delivery): insert the body, or find it and take FOR KEY SHARE on its row (the
 *   message's foreign key takes the same), so a concurrent removal waits for this transaction
 *   (attachBody here for a body over INLINE_BODY_MAX; poplar_deliver, migrations/004-delivery.sql,
 *   for one of at most INLINE_BODY_MAX octets, the same two steps).
 * - Removing messages (`removeMessages`, UPDATE at QUIT and retention): lock the maildrop's row
 *   (as a delivery does before it attaches a body of at most INLINE_BODY_MAX octets), take FOR UPDATE on the bodies'
 *   rows (ascending id, so two removals never deadlock), delete the messages, then delete every
 *   locked body no message names any more, in the same transaction. Two sessions
 *   removing the last two references of one body run one after the other on that lock, and the
 *   second sees the first's delete committed, so the body goes with its last reference.
 */
import { createHash } from 'node:crypto';
import { StorageError } from '../../errors.js';
import { ChunkPool, pooledView, type PooledChunk } from '../../protocol/chunk-pool.js';
import { RETR_READ_CHUNK } from '../../protocol/limits.js';
import type { MessageSource } from '../mail-store.js';
import type { Sql, TransactionSql } from './client.js';

/**
 * Octets per `body_chunks` row: the most that keeps the row inside one 8 KiB heap page (40
 * octets of tuple header and columns, 8160 at most: migrations/003-body-storage.sql raises the
 * table's toast_tuple_target to that), so a row is read without TOAST's ~2 KB out-of-line pieces
 * and its DataRow message usually arrives within one of the client's 64 KiB socket reads, where
 * postgres.js copies it once instead of assembling it first (R-X17 throughput). Rows written by
 * an older poplar (256 KiB, out of line) are read the same way.
 */
export const BODY_CHUNK = 8120;

/**
 * Octets at most per row of a body's tail (what is left after its full BODY_CHUNK rows), cut in
 * rows of equal size: rows of up to 2040 octets with their header go four to a page and fill the
 * room other rows leave. A lone 4-8 KiB row took a page to itself, and a 4040-octet row with a
 * short one beside it left the next body's half-page row no room (pg-disk: a 4 KB message cost
 * 8.9 KB on disk either way, against 6.4 KB in TOAST's ~2 KB pieces; docs/scaling.md).
 */
export const TAIL_CHUNK = 2000;

/** Where each row of a body of `octets` octets starts: full BODY_CHUNK rows, then the rest in equal rows of at most TAIL_CHUNK. */
export function rowStarts(octets: number): number[] {
  const starts: number[] = [];
  let at = 0;
  for (; octets - at >= BODY_CHUNK; at += BODY_CHUNK) starts.push(at);
  const tail = octets - at;
  const rows = Math.ceil(tail / TAIL_CHUNK);
  for (let k = 0; k < rows; k++) starts.push(at + Math.ceil((k * tail) / rows));
  return starts;
}

/** Where each of the rows at `starts` ends: the next row's start, the body's end for the last. */
export function rowEnds(starts: readonly number[], octets: number): number[] {
  return starts.map((_, i) => starts[i + 1] ?? octets);
}

/**
 * Bodies up to this size are sent inside poplar_deliver's one statement (pg-store.ts; one
 * parameter the database cuts at rowStarts); a larger one is written first by attachBody, one
 * statement per ROWS_PER_INSERT rows, so no statement carries more than ~1 MiB of body.
 */
export const INLINE_BODY_MAX = 256 * 1024;

/** Rows one INSERT of a delivery writes (~1 MiB of full rows). */
const ROWS_PER_INSERT = 128;

export function bodyHash(body: Buffer): Buffer {
  return createHash('sha256').update(body).digest();
}

/** The id of the body with these octets, stored now if no message has them yet. */
export async function attachBody(tx: TransactionSql, body: Buffer, sha256 = bodyHash(body)): Promise<number> {
  for (;;) {
    const [inserted] = await tx<{ id: number }[]>`
      INSERT INTO bodies (sha256, octets, chunk_octets) VALUES (${sha256}, ${body.length}, ${BODY_CHUNK})
      ON CONFLICT (sha256) DO NOTHING RETURNING id`;
    if (inserted !== undefined) {
      // One statement per ~FETCH_OCTETS of rows, pipelined on the transaction's connection: each
      // sends its part of the body once and the database cuts it at rowStarts (a 50 MB body is
      // 50 statements, none holding more than its part).
      const starts = rowStarts(body.length);
      const ends = rowEnds(starts, body.length);
      const writes = [];
      for (let first = 0; first < starts.length; first += ROWS_PER_INSERT) {
        const last = Math.min(first + ROWS_PER_INSERT, starts.length);
        const from = starts[first]!;
        const to = ends[last - 1]!;
        const relative = (at: number): number => at - from;
        writes.push(tx`INSERT INTO body_chunks (body_id, seq, data)
          SELECT ${inserted.id}, ${first}::int + r.n - 1, substring(${body.subarray(from, to)}::bytea FROM r.s + 1 FOR r.e - r.s)
          FROM unnest(${starts.slice(first, last).map(relative)}::int[], ${ends.slice(first, last).map(relative)}::int[]) WITH ORDINALITY AS r(s, e, n)`);
      }
      await Promise.all(writes);
      return inserted.id;
    }
    const [found] = await tx<{ id: number }[]>`SELECT id FROM bodies WHERE sha256 = ${sha256} FOR KEY SHARE`;
    if (found !== undefined) return found.id;
    // Removed with its last message between the two statements: store it again.
  }
}

/**
 * Deletes these messages of a maildrop and every body that was theirs alone (see the header), and
 * takes what it deleted off the maildrop's usage (R-S16, `maildrops.messages` / `octets`). The
 * maildrop's row is locked first, then the bodies': the order poplar_deliver and retention lock in.
 */
export async function removeMessages(tx: TransactionSql, maildropId: number, uids: readonly number[]): Promise<void> {
  if (uids.length === 0) return;
  const [, rows] = await Promise.all([
    tx`SELECT 1 FROM maildrops WHERE id = ${maildropId} FOR NO KEY UPDATE`,
    tx<{ body_id: number }[]>`
      SELECT DISTINCT body_id FROM messages WHERE maildrop_id = ${maildropId} AND uid = ANY(${uids}::bigint[]) ORDER BY body_id`,
  ]);
  const bodies = rows.map((r) => r.body_id);
  if (bodies.length > 0) await tx`SELECT id FROM bodies WHERE id = ANY(${bodies}::bigint[]) ORDER BY id FOR UPDATE`;
  // Only the rows this transaction deleted count (another session's UPDATE may have taken some).
  await tx`WITH gone AS (DELETE FROM messages WHERE maildrop_id = ${maildropId} AND uid = ANY(${uids}::bigint[]) RETURNING size)
    UPDATE maildrops SET messages = messages - (SELECT count(*) FROM gone), octets = octets - (SELECT coalesce(sum(size), 0) FROM gone)
    WHERE id = ${maildropId}`;
  if (bodies.length > 0) {
    await tx`DELETE FROM bodies b WHERE b.id = ANY(${bodies}::bigint[])
      AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.body_id = b.id)`;
  }
}

/** Body octets one query fetches at most (a RETR holds two such batches: the one being sent, the next one). */
export const FETCH_OCTETS = 1024 * 1024;

/** Rows one query fetches for a body written in rows of `chunkOctets` (`bodies.chunk_octets`): FETCH_OCTETS of them, at least one. */
export function rowsPerFetch(chunkOctets: number): number {
  return Math.max(1, Math.floor(FETCH_OCTETS / chunkOctets));
}

/** Rows of `body_chunks` as a fetch returns them. */
export interface ChunkRow {
  seq: number;
  data: Buffer;
}

/**
 * A message's octets: its own head, then its body's rows, fetched rowsPerFetch rows per query
 * (~1 MiB, FETCH_OCTETS), the next batch requested as soon as the current one starts going out, so the
 * database's round trip overlaps the sending and a RETR holds at most two batches, whatever the
 * message's size (R-X9). The rows of a batch are copied into buffers of RETR_READ_CHUNK octets
 * from `readPool`, handed out synchronously (no promise per chunk) and given back by whoever
 * uses them last (protocol/chunk-pool.ts), as Maildir's file reads are: the only fresh memory per
 * row is postgres.js's own copy of it. `first`: the batch the opening query brought with the
 * head (a message up to ~1 MiB costs that one query). The body ends when `octets` octets have
 * come; a fetch that finds no row before that (the body was removed with its last message since
 * the read began) fails MESSAGE_GONE.
 */
export class BodySource implements MessageSource {
  /** The buffers rows are gathered into, shared by every source; at most 16 kept free. */
  private static readonly readPool = new ChunkPool(RETR_READ_CHUNK, 16);

  private headDone: boolean;
  /** The current batch's rows, and the next row and octet in it to copy. */
  private rows: Buffer[] = [];
  private row = 0;
  private at = 0;
  /** The seq after the last fetched row. */
  private nextSeq: number;
  /** Body octets fetched so far. */
  private fetched = 0;
  private ahead: Promise<ChunkRow[]> | undefined;
  private closed = false;

  constructor(
    private readonly sql: Sql,
    private readonly head: Buffer,
    private readonly bodyId: number,
    private readonly octets: number,
    /** Rows per fetch (rowsPerFetch of the body's chunk_octets). */
    private readonly perFetch: number,
    first: readonly ChunkRow[],
  ) {
    this.headDone = head.length === 0;
    this.nextSeq = 0;
    this.accept(first);
  }

  next(): Buffer | undefined | Promise<Buffer | undefined> {
    if (this.closed) return undefined;
    if (!this.headDone) {
      this.headDone = true;
      return this.head;
    }
    if (this.row < this.rows.length) return this.take();
    if (this.fetched >= this.octets) {
      this.close();
      return undefined;
    }
    return this.await();
  }

  close(): void {
    this.closed = true;
    this.rows = [];
    // A prefetched batch nobody takes: its failure (the pool closing) is nobody's business.
    this.ahead?.catch(() => undefined);
    this.ahead = undefined;
  }

  /**
   * The current batch's next RETR_READ_CHUNK octets (fewer at its end) in a pooled buffer; the
   * first one taken starts the fetch of the next batch.
   */
  private take(): PooledChunk {
    if (this.ahead === undefined && this.fetched < this.octets) this.ahead = this.fetch();
    const buf = BodySource.readPool.take();
    let n = 0;
    while (n < buf.length && this.row < this.rows.length) {
      const data = this.rows[this.row]!;
      const copied = data.copy(buf, n, this.at);
      n += copied;
      this.at += copied;
      if (this.at >= data.length) {
        this.rows[this.row++] = EMPTY; // the batch does not keep what was handed out
        this.at = 0;
      }
    }
    return pooledView(buf, 0, n);
  }

  private async await(): Promise<Buffer | undefined> {
    const pending = this.ahead ?? this.fetch();
    this.ahead = undefined;
    let rows: ChunkRow[];
    try {
      rows = await pending;
    } catch (err) {
      this.close();
      throw err instanceof StorageError ? err : new StorageError('IO', `database: ${(err as Error).message}`, err);
    }
    if (this.closed) return undefined;
    this.accept(rows);
    if (this.rows.length === 0) {
      this.close();
      throw new StorageError('MESSAGE_GONE', 'the message was removed while it was read');
    }
    return this.take();
  }

  private accept(rows: readonly ChunkRow[]): void {
    this.rows = [];
    this.row = 0;
    this.at = 0;
    for (const r of rows) {
      if (r.seq !== this.nextSeq) break; // a gap: the body is going; the next fetch finds out
      if (r.data.length > 0) this.rows.push(r.data);
      this.fetched += r.data.length;
      this.nextSeq++;
    }
  }

  private fetch(): Promise<ChunkRow[]> {
    const p = this.sql<ChunkRow[]>`SELECT seq, data FROM body_chunks
      WHERE body_id = ${this.bodyId} AND seq >= ${this.nextSeq} ORDER BY seq LIMIT ${this.perFetch}`;
    p.catch(() => undefined); // awaited by next(); never an unhandled rejection meanwhile
    return p;
  }
}

const EMPTY = Buffer.alloc(0);

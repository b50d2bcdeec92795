/**
 * Message bodies in PostgreSQL (R-X18, R-X9): a body is stored once for every message with the
 * same octets, keyed by SHA-256, in rows of at most BODY_CHUNK octets (`body_chunks`), and read
 * back a few rows per query (BodySource), so RETR of a 50 MB message holds two batches of
 * rows (~2 MiB), never the message.
 *
 * Reference rule, without a counter to keep: a body lives while a `messages` row names it.
 * - Attaching (a delivery): insert the body, or find it and take FOR KEY SHARE on its row (the
 *   message's foreign key takes the same), so a concurrent removal waits for this transaction
 *   (attachBody here for a body of several chunks; poplar_deliver, migrations/004-delivery.sql,
 *   for one of at most BODY_CHUNK octets, the same two steps).
 * - Removing messages (`removeMessages`, UPDATE at QUIT and retention): lock the maildrop's row
 *   (as a delivery does before it attaches a body of one chunk), take FOR UPDATE on the bodies'
 *   rows (ascending id, so two removals never deadlock), delete the messages, then delete every
 *   locked body no message names any more, in the same transaction. Two sessions
 *   removing the last two references of one body run one after the other on that lock, and the
 *   second sees the first's delete committed, so the body goes with its last reference.
 */
import { createHash } from 'node:crypto';
import { StorageError } from '../../errors.js';
import { RETR_READ_CHUNK } from '../../protocol/limits.js';
import type { MessageSource } from '../mail-store.js';
import type { Sql, TransactionSql } from './client.js';

/** Octets per `body_chunks` row: one RETR read. */
export const BODY_CHUNK = RETR_READ_CHUNK;

export function bodyHash(body: Buffer): Buffer {
  return createHash('sha256').update(body).digest();
}

/** The id of the body with these octets, stored now if no message has them yet. */
export async function attachBody(tx: TransactionSql, body: Buffer, sha256 = bodyHash(body)): Promise<number> {
  for (;;) {
    const [inserted] = await tx<{ id: number }[]>`
      INSERT INTO bodies (sha256, octets) VALUES (${sha256}, ${body.length})
      ON CONFLICT (sha256) DO NOTHING RETURNING id`;
    if (inserted !== undefined) {
      const writes = [];
      for (let seq = 0, at = 0; at < body.length; seq++, at += BODY_CHUNK) {
        writes.push(tx`INSERT INTO body_chunks (body_id, seq, data) VALUES (${inserted.id}, ${seq}, ${body.subarray(at, at + BODY_CHUNK)})`);
      }
      await Promise.all(writes); // pipelined on the transaction's connection
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

/** Chunks one query fetches (a RETR holds at most two such batches: the one sent, the next one). */
export const CHUNKS_PER_FETCH = 4;

/** Rows of `body_chunks` as a fetch returns them. */
export interface ChunkRow {
  seq: number;
  data: Buffer;
}

/**
 * A message's octets: its own head, then its body's chunks, fetched CHUNKS_PER_FETCH rows per
 * query (~1 MiB), the next batch requested as soon as the current one starts going out, so the
 * database's round trip overlaps the sending and a RETR holds at most two batches, whatever the
 * message's size (R-X9). Chunks already fetched are returned synchronously (no promise per
 * chunk). `first`: the batch the opening query brought with the head (a message up to ~1 MiB
 * costs that one query). The body ends when `octets` octets have come; a fetch that finds no
 * row before that (the body was removed with its last message since the read began) fails
 * MESSAGE_GONE.
 */
export class BodySource implements MessageSource {
  private headDone: boolean;
  private batch: Buffer[] = [];
  private taken = 0;
  /** The seq after the last fetched chunk. */
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
    if (this.taken < this.batch.length) return this.take();
    if (this.fetched >= this.octets) {
      this.close();
      return undefined;
    }
    return this.await();
  }

  close(): void {
    this.closed = true;
    this.batch = [];
    // A prefetched batch nobody takes: its failure (the pool closing) is nobody's business.
    this.ahead?.catch(() => undefined);
    this.ahead = undefined;
  }

  /** The next chunk of the current batch; the first one taken starts the fetch of the next batch. */
  private take(): Buffer {
    const chunk = this.batch[this.taken]!;
    this.batch[this.taken++] = EMPTY; // the batch does not keep what was handed out
    if (this.ahead === undefined && this.fetched < this.octets) this.ahead = this.fetch();
    return chunk;
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
    if (this.batch.length === 0) {
      this.close();
      throw new StorageError('MESSAGE_GONE', 'the message was removed while it was read');
    }
    return this.take();
  }

  private accept(rows: readonly ChunkRow[]): void {
    this.batch = [];
    this.taken = 0;
    for (const r of rows) {
      if (r.seq !== this.nextSeq) break; // a gap: the body is going; the next fetch finds out
      this.batch.push(r.data);
      this.fetched += r.data.length;
      this.nextSeq++;
    }
  }

  private fetch(): Promise<ChunkRow[]> {
    const p = this.sql<ChunkRow[]>`SELECT seq, data FROM body_chunks
      WHERE body_id = ${this.bodyId} AND seq >= ${this.nextSeq} ORDER BY seq LIMIT ${CHUNKS_PER_FETCH}`;
    p.catch(() => undefined); // awaited by next(); never an unhandled rejection meanwhile
    return p;
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * Message bodies in PostgreSQL (R-X18, R-X9): a body is stored once for every message with the
 * same octets, keyed by SHA-256, in rows of at most BODY_CHUNK octets (`body_chunks`), and read
 * back one row at a time, so RETR of a 50 MB message holds a chunk or two, never the message.
 *
 * Reference rule, without a counter to keep: a body lives while a `messages` row names it.
 * - Attaching (a delivery): insert the body, or find it and take FOR KEY SHARE on its row (the
 *   message's foreign key takes the same), so a concurrent removal waits for this transaction.
 * - Removing messages (`removeMessages`, UPDATE at QUIT and retention): take FOR UPDATE on the
 *   bodies' rows first (ascending id, so two removals never deadlock), delete the messages, then
 *   delete every locked body no message names any more, in the same transaction. Two sessions
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

/** Deletes these messages of a maildrop and every body that was theirs alone (see the header). */
export async function removeMessages(tx: TransactionSql, maildropId: number, uids: readonly number[]): Promise<void> {
  if (uids.length === 0) return;
  const rows = await tx<{ body_id: number }[]>`
    SELECT DISTINCT body_id FROM messages WHERE maildrop_id = ${maildropId} AND uid = ANY(${uids}::bigint[]) ORDER BY body_id`;
  const bodies = rows.map((r) => r.body_id);
  if (bodies.length > 0) await tx`SELECT id FROM bodies WHERE id = ANY(${bodies}::bigint[]) ORDER BY id FOR UPDATE`;
  await tx`DELETE FROM messages WHERE maildrop_id = ${maildropId} AND uid = ANY(${uids}::bigint[])`;
  if (bodies.length > 0) {
    await tx`DELETE FROM bodies b WHERE b.id = ANY(${bodies}::bigint[])
      AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.body_id = b.id)`;
  }
}

/**
 * A message's octets: its own head, then its body's chunks, one row per next(), the following row
 * requested while the caller sends this one. A chunk missing (the body was removed with its last
 * message since the read began) fails MESSAGE_GONE.
 */
export class BodySource implements MessageSource {
  private seq = 0;
  private headDone: boolean;
  private ahead: Promise<Buffer | undefined> | undefined;
  private closed = false;

  constructor(
    private readonly sql: Sql,
    private readonly head: Buffer,
    private readonly bodyId: number,
    private readonly chunks: number,
  ) {
    this.headDone = head.length === 0;
  }

  async next(): Promise<Buffer | undefined> {
    if (this.closed) return undefined;
    if (!this.headDone) {
      this.headDone = true;
      this.ahead = this.fetch(0);
      return this.head;
    }
    if (this.seq >= this.chunks) {
      this.close();
      return undefined;
    }
    const current = this.ahead ?? this.fetch(this.seq);
    this.seq++;
    this.ahead = this.seq < this.chunks ? this.fetch(this.seq) : undefined;
    try {
      const chunk = await current;
      if (chunk === undefined) throw new StorageError('MESSAGE_GONE', 'the message was removed while it was read');
      return chunk;
    } catch (err) {
      this.close();
      throw err instanceof StorageError ? err : new StorageError('IO', `database: ${(err as Error).message}`, err);
    }
  }

  close(): void {
    this.closed = true;
    // A prefetched row nobody takes: its failure (the pool closing) is nobody's business.
    this.ahead?.catch(() => undefined);
    this.ahead = undefined;
  }

  private fetch(seq: number): Promise<Buffer | undefined> {
    if (seq >= this.chunks) return Promise.resolve(undefined);
    const p = this.sql<{ data: Buffer }[]>`SELECT data FROM body_chunks WHERE body_id = ${this.bodyId} AND seq = ${seq}`
      .then((rows) => rows[0]?.data);
    p.catch(() => undefined); // awaited by next(); never an unhandled rejection meanwhile
    return p;
  }
}

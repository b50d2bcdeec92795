/**
 * A session's snapshot of a PostgreSQL maildrop (R-S3): the messages listed at open, never
 * changed during the session; reads of a message another session removed fail MESSAGE_GONE;
 * commit applies the session's deletions, hides and retrieved marks in one transaction at
 * UPDATE (R-K4, R-S11), and only to messages of this snapshot; release ends the session's claim.
 */
import type { Readable } from 'node:stream';
import { StorageError } from '../../errors.js';
import { readableOf, type CommitChanges, type MaildropSnapshot, type MessageInfo, type MessageSource } from '../mail-store.js';
import { MessageList } from '../message-list.js';
import { BodySource, removeMessages } from './pg-bodies.js';
import type { Sql, TransactionSql } from './client.js';

/** What a snapshot needs of its store. */
export interface SnapshotHost {
  readonly sql: Sql;
  /** Runs `fn` in a transaction; database failures become StorageError('IO'). */
  tx<T>(fn: (tx: TransactionSql) => Promise<T>): Promise<T>;
  /** A query outside a transaction, failures mapped the same way. */
  query<T>(fn: (sql: Sql) => Promise<T>): Promise<T>;
  /** Ends the claim `token` (best effort: an unreleased claim lapses with its lease). */
  releaseClaim(token: string): Promise<void>;
}

export class PostgresSnapshot implements MaildropSnapshot {
  private released = false;
  private readonly ids: ReadonlySet<string>;
  /** The compact listing sessions read (STAT, LIST, UIDL). */
  readonly list: MessageList;

  constructor(
    private readonly host: SnapshotHost,
    readonly mailbox: string,
    private readonly maildropId: number,
    private readonly claim: string,
    readonly messages: readonly MessageInfo[],
  ) {
    this.ids = new Set(messages.map((m) => m.id));
    this.list = MessageList.from(messages);
  }

  async read(id: string): Promise<Readable> {
    return readableOf(await this.open(id));
  }

  async open(id: string): Promise<MessageSource> {
    this.checkLive();
    if (!this.ids.has(id)) throw new StorageError('MESSAGE_GONE', `message ${id} is not in this session's list`);
    const uid = Number(id);
    const [row] = await this.host.query((sql) => sql<{ head: Buffer; body_id: number; chunks: number }[]>`
      SELECT m.head, m.body_id, (SELECT count(*) FROM body_chunks c WHERE c.body_id = m.body_id)::int AS chunks
      FROM messages m WHERE m.maildrop_id = ${this.maildropId} AND m.uid = ${uid}`);
    if (row === undefined) throw new StorageError('MESSAGE_GONE', `message ${id} was removed by another session`);
    return new BodySource(this.host.sql, row.head, row.body_id, row.chunks);
  }

  async commit(changes: CommitChanges): Promise<void> {
    this.checkLive();
    // Only what this session was shown: a later delivery is never touched (R-S11).
    const mine = (ids: readonly string[] | undefined): number[] => [...new Set(ids ?? [])].filter((id) => this.ids.has(id)).map(Number);
    const expunge = mine(changes.expunge);
    const seen = mine(changes.seen);
    const hide = mine(changes.hide);
    if (expunge.length + seen.length + hide.length === 0) return;
    const d = this.maildropId;
    await this.host.tx(async (tx) => {
      if (seen.length > 0) {
        await tx`UPDATE messages SET retrieved_at = now()
          WHERE maildrop_id = ${d} AND uid = ANY(${seen}::bigint[]) AND retrieved_at IS NULL`;
      }
      if (hide.length > 0) {
        await tx`UPDATE messages SET hidden_at = now()
          WHERE maildrop_id = ${d} AND uid = ANY(${hide}::bigint[]) AND hidden_at IS NULL`;
      }
      await removeMessages(tx, d, expunge);
    });
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.host.releaseClaim(this.claim);
  }

  private checkLive(): void {
    if (this.released) throw new StorageError('IO', `snapshot of ${this.mailbox} was released`);
  }
}

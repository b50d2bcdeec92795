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
import { BodySource, CHUNKS_PER_FETCH, removeMessages, type ChunkRow } from './pg-bodies.js';
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

/** Octets per message in loadListing's packed column: uid (int8), size (int8), seen (one octet). */
const PACKED = 17;

/**
 * The listing of a maildrop (messages not hidden, ascending uid) as a compact MessageList
 * (R-X9, R-S4), built from one row: the database packs every message's uid, size and seen mark
 * into one bytea (17 octets per message, sent in binary), and the carried-over UIDLs (R-X11) into
 * one text of `uid uidl` pairs, NULL when there are none. No row object per message: 1M messages
 * cost 17 MB of typed arrays (and the packed column while it is read), not a million objects.
 */
export async function loadListing(tx: TransactionSql, maildropId: number): Promise<MessageList> {
  const [row] = await tx<{ packed: Buffer; uidls: string | null }[]>`
    SELECT coalesce(string_agg(int8send(uid) || int8send(size)
             || decode(CASE WHEN retrieved_at IS NULL THEN '00' ELSE '01' END, 'hex'), ''::bytea ORDER BY uid), ''::bytea) AS packed,
           string_agg(uid::text || ' ' || uidl, ' ') FILTER (WHERE uidl IS NOT NULL) AS uidls
    FROM messages WHERE maildrop_id = ${maildropId} AND hidden_at IS NULL`;
  const packed = row?.packed ?? Buffer.alloc(0);
  const n = packed.length / PACKED;
  if (!Number.isInteger(n)) throw new StorageError('IO', `database: listing of ${packed.length} octets is not ${PACKED} per message`);
  const uids = new Float64Array(n);
  const sizes = new Float64Array(n);
  const flags = new Uint8Array(n);
  for (let i = 0, at = 0; i < n; i++, at += PACKED) {
    uids[i] = packed.readUInt32BE(at) * 2 ** 32 + packed.readUInt32BE(at + 4);
    sizes[i] = packed.readUInt32BE(at + 8) * 2 ** 32 + packed.readUInt32BE(at + 12);
    flags[i] = packed[at + 16]!;
  }
  let uidls: Map<number, string> | undefined;
  const list = (l: Map<number, string> | undefined): MessageList => MessageList.ofUids(uids, sizes, flags, l);
  if (row?.uidls === null || row?.uidls === undefined) return list(undefined);
  const byUid = list(undefined);
  const words = row.uidls.split(' ');
  for (let k = 0; k + 1 < words.length; k += 2) {
    const i = byUid.indexOf(words[k]!);
    if (i >= 0) (uidls ??= new Map()).set(i, words[k + 1]!);
  }
  return list(uidls);
}

export class PostgresSnapshot implements MaildropSnapshot {
  private released = false;
  private objects: readonly MessageInfo[] | undefined;

  constructor(
    private readonly host: SnapshotHost,
    readonly mailbox: string,
    private readonly maildropId: number,
    private readonly claim: string,
    /** The compact listing sessions read (STAT, LIST, UIDL). */
    readonly list: MessageList,
  ) {}

  /** The listing as objects, made at the first use (tools and tests). */
  get messages(): readonly MessageInfo[] {
    return (this.objects ??= Object.freeze(this.list.toArray()));
  }

  async read(id: string): Promise<Readable> {
    return readableOf(await this.open(id));
  }

  /**
   * One query brings the message's head, its body's size and the body's first CHUNKS_PER_FETCH
   * chunks (the whole of a message up to ~1 MiB); BodySource fetches the rest.
   */
  async open(id: string, at?: number): Promise<MessageSource> {
    this.checkLive();
    if (this.list.indexOf(id, at) < 0) throw new StorageError('MESSAGE_GONE', `message ${id} is not in this session's list`);
    const uid = Number(id);
    const rows = await this.host.query((sql) => sql<{ head: Buffer; body_id: number; octets: number; seq: number | null; data: Buffer | null }[]>`
      SELECT m.head, m.body_id, b.octets, c.seq, c.data
      FROM messages m JOIN bodies b ON b.id = m.body_id
      LEFT JOIN LATERAL (SELECT seq, data FROM body_chunks WHERE body_id = m.body_id ORDER BY seq LIMIT ${CHUNKS_PER_FETCH}) c ON true
      WHERE m.maildrop_id = ${this.maildropId} AND m.uid = ${uid} ORDER BY c.seq`);
    const first = rows[0];
    if (first === undefined) throw new StorageError('MESSAGE_GONE', `message ${id} was removed by another session`);
    const chunks: ChunkRow[] = [];
    for (const r of rows) if (r.seq !== null && r.data !== null) chunks.push({ seq: r.seq, data: r.data });
    return new BodySource(this.host.sql, first.head, first.body_id, first.octets, chunks);
  }

  async commit(changes: CommitChanges): Promise<void> {
    this.checkLive();
    // Only what this session was shown: a later delivery is never touched (R-S11).
    const mine = (ids: readonly string[] | undefined): number[] => [...new Set(ids ?? [])].filter((id) => this.list.indexOf(id) >= 0).map(Number);
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

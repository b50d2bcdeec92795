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
import { BodySource, FETCH_OCTETS, removeMessages, rowsPerFetch, type ChunkRow } from './pg-bodies.js';
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

/** Messages per listing query: ~1.1 MB of packed columns per page. */
export const LISTING_PAGE = 65536;
const UNSEEN = Buffer.from([0]);
const SEEN = Buffer.from([1]);

interface Page {
  uids: Float64Array;
  sizes: Float64Array;
  flags: Uint8Array;
}

interface PackedRow {
  uids: Buffer | null;
  sizes: Buffer | null;
  seen: Buffer | null;
  uidls: string | null;
}

/** A page's packed columns (int8 big-endian uids and sizes, one octet per seen mark) as typed arrays. */
function unpack(row: PackedRow | undefined): Page {
  const u = row?.uids ?? Buffer.alloc(0);
  const z = row?.sizes ?? Buffer.alloc(0);
  const f = row?.seen ?? Buffer.alloc(0);
  const n = u.length / 8;
  if (z.length !== u.length || f.length !== n) throw new StorageError('IO', 'database: listing columns of different lengths');
  const page = { uids: new Float64Array(n), sizes: new Float64Array(n), flags: new Uint8Array(n) };
  for (let i = 0, at = 0; i < n; i++, at += 8) {
    page.uids[i] = u.readUInt32BE(at) * 2 ** 32 + u.readUInt32BE(at + 4);
    page.sizes[i] = z.readUInt32BE(at) * 2 ** 32 + z.readUInt32BE(at + 4);
    page.flags[i] = f[i]!;
  }
  return page;
}

/** The pages as one (the arrays of a single page as they are). */
function join(pages: readonly Page[]): Page {
  if (pages.length === 1) return pages[0]!;
  const n = pages.reduce((sum, p) => sum + p.uids.length, 0);
  const all = { uids: new Float64Array(n), sizes: new Float64Array(n), flags: new Uint8Array(n) };
  let at = 0;
  for (const p of pages) {
    all.uids.set(p.uids, at);
    all.sizes.set(p.sizes, at);
    all.flags.set(p.flags, at);
    at += p.uids.length;
  }
  return all;
}

/** Puts the listing in ascending uid order if the database handed it otherwise (it does not: the pages come from the primary key's order). */
function ascending(p: Page): Page {
  const n = p.uids.length;
  let sorted = true;
  for (let i = 1; i < n && sorted; i++) sorted = p.uids[i - 1]! < p.uids[i]!;
  if (sorted) return p;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => p.uids[a]! - p.uids[b]!);
  return {
    uids: Float64Array.from(order, (i) => p.uids[i]!),
    sizes: Float64Array.from(order, (i) => p.sizes[i]!),
    flags: Uint8Array.from(order, (i) => p.flags[i]!),
  };
}

/**
 * The listing of a maildrop (messages not hidden, ascending uid) as a compact MessageList
 * (R-X9, R-S4), read in pages of LISTING_PAGE messages by uid: the database packs each page's
 * uids, sizes and seen marks into three bytea columns (8 + 8 + 1 octets per message, sent in
 * binary) and its carried-over UIDLs (R-X11) into one text of `uid uidl` pairs, NULL when there
 * are none. No row object per message: 1M messages cost 17 MB of typed arrays and one page
 * (~1 MB) of packed columns at a time, not a million objects. One page for a maildrop of up to
 * LISTING_PAGE messages: a login costs one query for the listing.
 */
export async function loadListing(tx: TransactionSql, maildropId: number): Promise<MessageList> {
  const pages: Page[] = [];
  const uidlText: string[] = [];
  for (let after = -1; ;) {
    const [row] = await tx<PackedRow[]>`
      SELECT string_agg(int8send(uid), ''::bytea) AS uids, string_agg(int8send(size), ''::bytea) AS sizes,
             string_agg(CASE WHEN retrieved_at IS NULL THEN ${UNSEEN}::bytea ELSE ${SEEN}::bytea END, ''::bytea) AS seen,
             string_agg(uid::text || ' ' || uidl, ' ') FILTER (WHERE uidl IS NOT NULL) AS uidls
      FROM (SELECT uid, size, retrieved_at, uidl FROM messages
            WHERE maildrop_id = ${maildropId} AND hidden_at IS NULL AND uid > ${after}
            ORDER BY uid LIMIT ${LISTING_PAGE}) AS page`;
    const page = unpack(row);
    pages.push(page);
    if (row?.uidls !== null && row?.uidls !== undefined) uidlText.push(row.uidls);
    const n = page.uids.length;
    if (n < LISTING_PAGE) break;
    // The page is the LISTING_PAGE lowest uids above `after`, whatever order the rows came in.
    for (let i = 0; i < n; i++) after = Math.max(after, page.uids[i]!);
  }
  const all = ascending(join(pages));
  const byUid = MessageList.ofUids(all.uids, all.sizes, all.flags, undefined);
  if (uidlText.length === 0) return byUid;
  const uidls = new Map<number, string>();
  for (const text of uidlText) {
    const words = text.split(' ');
    for (let k = 0; k + 1 < words.length; k += 2) {
      const i = byUid.indexOf(words[k]!);
      if (i >= 0) uidls.set(i, words[k + 1]!);
    }
  }
  return MessageList.ofUids(all.uids, all.sizes, all.flags, uidls);
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
   * One query brings the message's head, its body's size and the body's first FETCH_OCTETS in
   * rows (the whole of a message up to ~1 MiB); BodySource fetches the rest. The head comes in
   * the first row only (the body's seq 0, or the one row of an empty body), not once per row.
   */
  async open(id: string, at?: number): Promise<MessageSource> {
    this.checkLive();
    if (this.list.indexOf(id, at) < 0) throw new StorageError('MESSAGE_GONE', `message ${id} is not in this session's list`);
    const uid = Number(id);
    const rows = await this.host.query((sql) => sql<{ head: Buffer | null; body_id: number; octets: number; chunk_octets: number; seq: number | null; data: Buffer | null }[]>`
      SELECT CASE WHEN c.seq IS NULL OR c.seq = 0 THEN m.head END AS head, m.body_id, b.octets, b.chunk_octets, c.seq, c.data
      FROM messages m JOIN bodies b ON b.id = m.body_id
      LEFT JOIN LATERAL (SELECT seq, data FROM body_chunks WHERE body_id = m.body_id ORDER BY seq
        LIMIT greatest(1, ${FETCH_OCTETS}::int / b.chunk_octets)) c ON true
      WHERE m.maildrop_id = ${this.maildropId} AND m.uid = ${uid} ORDER BY c.seq`);
    const first = rows[0];
    if (first === undefined) throw new StorageError('MESSAGE_GONE', `message ${id} was removed by another session`);
    const chunks: ChunkRow[] = [];
    for (const r of rows) if (r.seq !== null && r.data !== null) chunks.push({ seq: r.seq, data: r.data });
    // No head only when the body's first row is missing: BodySource then finds the gap (MESSAGE_GONE).
    return new BodySource(this.host.sql, first.head ?? Buffer.alloc(0), first.body_id, first.octets, rowsPerFetch(first.chunk_octets), chunks);
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

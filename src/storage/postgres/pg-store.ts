/**
 * The MailStore on PostgreSQL (issue 15, R-X17): any number of poplar nodes share one database
 * (tables in migrations/001-mail.sql). Storage id = the uid as decimal text.
 *
 * - R-S12 uids: `maildrops.next_uid` is taken and advanced in the delivery's transaction, so uids
 *   increase per maildrop and are never reused, whichever node delivers and whatever was deleted.
 * - Delivery is one statement, poplar_deliver (migrations/004-delivery.sql): a message whose body
 *   is at most INLINE_BODY_MAX octets costs one round trip and no explicit transaction, its quota checked in it
 *   (R-S16); with quota warnings (R-S17: the warning in the same transaction as the message that
 *   crossed a threshold) or a larger body, a transaction.
 * - R-S16 usage: `maildrops.messages` / `octets`, kept with every insert and delete of a message.
 * - R-S4 sizes: the exact CRLF size is computed once at delivery and stored in `messages.size`.
 * - R-X6 / durability: deliver resolves after COMMIT, i.e. as durable as the server's
 *   `synchronous_commit` makes it (on: flushed to disk, and to a synchronous standby if one is
 *   configured). A failure rolls everything back: nothing of the message is visible.
 * - R-X18: the body (the octets after DeliverOptions.bodyOffset, the agent's trace headers) is
 *   stored once for every message with the same octets (pg-bodies.ts).
 * - R-S3 claims: every open snapshot holds a row in `maildrop_claims`, a lease its node renews
 *   every third of `leaseSeconds`; opens and retention check the claims under a lock on the
 *   maildrop's row (FOR SHARE for a plain open, FOR UPDATE for an exclusive one and for expire),
 *   so exclusive mode ([IN-USE]) and "no sweep while a session is open" hold across nodes. A node
 *   that dies leaves claims that lapse at their expiry: at most `leaseSeconds` of [IN-USE].
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { StorageError } from '../../errors.js';
import { crlfSize } from '../../protocol/crlf.js';
import {
  isValidMailboxName,
  isValidUidl,
  type DeliverOptions,
  type DeliveryResult,
  type ExpireResult,
  type ExpiryCandidate,
  type MailStore,
  type MaildropSnapshot,
  type MessageInfo,
  type OpenOptions,
  type QuotaLimit,
  type Usage,
} from '../mail-store.js';
import type { Sql, TransactionSql } from './client.js';
import { checkSchema } from './migrate.js';
import { attachBody, BODY_CHUNK, bodyHash, INLINE_BODY_MAX, removeMessages, rowEnds, rowStarts } from './pg-bodies.js';
import { loadListing, PostgresSnapshot, type SnapshotHost } from './pg-snapshot.js';

export interface PostgresMailStoreOptions {
  /** The pool (client.ts connectPostgres). */
  readonly sql: Sql;
  /** close() ends the pool too (the store was given a pool of its own). */
  readonly ownsPool?: boolean;
  /** Life of a session's claim, renewed every third of it (`postgres.lease_seconds`). */
  readonly leaseSeconds?: number;
  /** Refuse to work on a schema this poplar does not know (default true; tests of migrate say false). */
  readonly checkSchema?: boolean;
}

/** Runs of a transaction PostgreSQL aborted to break a deadlock (tx()). */
const DEADLOCK_RETRIES = 3;

interface MessageRow {
  uid: number;
  size: number;
  uidl: string | null;
  seen: boolean;
}

/** One message for poplar_deliver (migrations/004-delivery.sql). */
interface Delivery {
  readonly mailbox: string;
  /** DeliverOptions.uid, 0 for the maildrop's next. */
  readonly wanted: number;
  readonly body: Buffer;
  readonly head: Buffer;
  readonly size: number;
  readonly uidl: string | null;
  readonly received: Date;
  readonly seen: boolean;
}

interface DeliveredRow {
  /** NULL: over the quota, nothing written. */
  uid: number | null;
  before_messages: number;
  before_octets: number;
}

const EMPTY = Buffer.alloc(0);

/**
 * The message's row, its uid taken and its body attached, in one statement (poplar_deliver):
 * `bodyId` is a body the caller attached in this transaction, else the body (at most
 * INLINE_BODY_MAX octets) is inserted in the rows rowStarts gives, or found, by the function.
 */
async function insertMessage(q: Sql | TransactionSql, d: Delivery, bodyId: number | null, quota: QuotaLimit | undefined): Promise<DeliveredRow> {
  const attach = bodyId === null;
  const starts = attach ? rowStarts(d.body.length) : [];
  const ends = rowEnds(starts, d.body.length);
  const [row] = await q<DeliveredRow[]>`SELECT uid, before_messages, before_octets FROM poplar_deliver(
    ${d.mailbox}, ${d.wanted}::bigint, ${bodyId}::bigint, ${attach ? bodyHash(d.body) : null}::bytea, ${d.body.length}::bigint,
    ${attach ? d.body : null}::bytea, ${starts}::int[], ${ends}::int[], ${BODY_CHUNK}::int,
    ${d.size}::bigint, ${d.head}::bytea, ${d.uidl}::text, ${d.received}::timestamptz, ${d.seen}::boolean,
    ${quota?.bytes ?? 0}::bigint, ${quota?.messages ?? 0}::bigint)`;
  return row!;
}

function info(r: MessageRow): MessageInfo {
  const base = { uid: r.uid, size: r.size, seen: r.seen, id: String(r.uid) };
  return r.uidl === null ? base : { ...base, uidl: r.uidl };
}

function checkName(mailbox: string): void {
  if (!isValidMailboxName(mailbox)) throw new StorageError('INVALID_NAME', `invalid mailbox name ${JSON.stringify(mailbox)}`);
}

function toStorageError(err: unknown): StorageError {
  if (err instanceof StorageError) return err;
  return new StorageError('IO', `database: ${err instanceof Error ? err.message : String(err)}`, err);
}

export class PostgresMailStore implements MailStore, SnapshotHost {
  readonly sql: Sql;
  private readonly leaseSeconds: number;
  private readonly node = `${hostname()}:${process.pid}`;
  /** Claims of this store's live snapshots, renewed by `renewer`. */
  private readonly claims = new Set<string>();
  private renewer: NodeJS.Timeout | undefined;
  private readonly schema: Promise<void>;

  constructor(private readonly opts: PostgresMailStoreOptions) {
    this.sql = opts.sql;
    this.leaseSeconds = opts.leaseSeconds ?? 60;
    this.schema = opts.checkSchema === false ? Promise.resolve() : checkSchema(this.sql);
    this.schema.catch(() => undefined); // reported by ready() and by every operation
  }

  /** Resolves once the schema is known to be the one this poplar runs on; rejects with the reason. */
  ready(): Promise<void> {
    return this.schema;
  }

  /**
   * Runs `fn` in a transaction, again (up to DEADLOCK_RETRIES times) if PostgreSQL broke a
   * deadlock by aborting it: a delivery of a body over INLINE_BODY_MAX holds that body's row and
   * waits for the maildrop's, while a retention sweep holds the maildrop's and waits for the
   * body's. Every transaction here can run again from the start (commit is idempotent).
   */
  async tx<T>(fn: (tx: TransactionSql) => Promise<T>): Promise<T> {
    return this.run(async () => (await this.sql.begin(fn)) as T);
  }

  /** Runs `fn` (a transaction, or one statement, which is one too) as tx() does. */
  private async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.schema.catch((e: unknown) => { throw new StorageError('IO', (e as Error).message, e); });
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if ((err as { code?: unknown }).code === '40P01' && attempt < DEADLOCK_RETRIES) continue;
        throw toStorageError(err);
      }
    }
  }

  async query<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    await this.schema.catch((e: unknown) => { throw new StorageError('IO', (e as Error).message, e); });
    try {
      return await fn(this.sql);
    } catch (err) {
      throw toStorageError(err);
    }
  }

  async open(mailbox: string, opts: OpenOptions): Promise<MaildropSnapshot> {
    checkName(mailbox);
    const token = randomUUID();
    const { id, list } = await this.tx(async (tx) => {
      const id = await this.lockMaildrop(tx, mailbox, opts.exclusive ? 'update' : 'share', true);
      // Statements sent together are pipelined on the transaction's connection: a login costs
      // four round trips (lock, claims, claim + listing, commit) for a maildrop of up to LISTING_PAGE messages.
      const [, held] = await Promise.all([
        tx`DELETE FROM maildrop_claims WHERE maildrop_id = ${id} AND expires_at < now()`,
        tx<{ exclusive: boolean }[]>`SELECT exclusive FROM maildrop_claims WHERE maildrop_id = ${id} AND expires_at >= now()`,
      ]);
      if (held.some((c) => c.exclusive) || (opts.exclusive && held.length > 0)) {
        throw new StorageError('MAILBOX_LOCKED', `mailbox ${mailbox} is in use`);
      }
      const [, list] = await Promise.all([
        tx`INSERT INTO maildrop_claims (token, maildrop_id, exclusive, node, expires_at)
          VALUES (${token}, ${id}, ${opts.exclusive}, ${this.node}, now() + make_interval(secs => ${this.leaseSeconds}))`,
        loadListing(tx, id),
      ]);
      return { id, list };
    });
    this.claims.add(token);
    this.renewLater();
    return new PostgresSnapshot(this, mailbox, id, token, list);
  }

  async deliver(mailbox: string, message: Buffer | AsyncIterable<Buffer>, opts: DeliverOptions = {}): Promise<DeliveryResult> {
    checkName(mailbox);
    if (opts.uidl !== undefined && !isValidUidl(opts.uidl)) {
      throw new StorageError('INVALID_UIDL', `invalid UIDL ${JSON.stringify(opts.uidl)}`);
    }
    // The whole message first (as LMTP holds it anyway): a failing source stores nothing (R-X6).
    let full: Buffer;
    if (Buffer.isBuffer(message)) full = message;
    else {
      const chunks: Buffer[] = [];
      for await (const chunk of message) chunks.push(Buffer.from(chunk));
      full = Buffer.concat(chunks);
    }
    const split = Math.min(Math.max(opts.bodyOffset ?? 0, 0), full.length);
    const head = Buffer.from(full.subarray(0, split));
    const body = full.subarray(split);
    const size = crlfSize(full);
    const received = new Date(opts.received ?? Date.now());
    const delivery: Delivery = { mailbox, wanted: opts.uid ?? 0, body, head, size, uidl: opts.uidl ?? null, received, seen: opts.seen === true };
    if (opts.quota?.warn === undefined && body.length <= INLINE_BODY_MAX) {
      // One statement (a single statement is atomic): the whole delivery, quota check included
      // (nothing is written over the quota), is one round trip.
      const row = await this.run(() => insertMessage(this.sql, delivery, null, opts.quota));
      if (row.uid === null) throw new StorageError('OVER_QUOTA', `mailbox ${mailbox} is over quota`);
      if (opts.quota === undefined) return { uid: row.uid, size };
      const before = { messages: row.before_messages, bytes: row.before_octets };
      return { uid: row.uid, size, usage: { before, after: { messages: before.messages + 1, bytes: before.bytes + size } } };
    }
    return this.tx(async (tx) => {
      // A body over INLINE_BODY_MAX is written first: the maildrop's row is locked only after it.
      const bodyId = body.length > INLINE_BODY_MAX ? await attachBody(tx, body) : null;
      // R-S16: poplar_deliver checks the quota under the maildrop row's lock, which orders this
      // maildrop's deliveries on every node, against the usage kept on that row: exact.
      const row = await insertMessage(tx, delivery, bodyId, opts.quota);
      if (row.uid === null) throw new StorageError('OVER_QUOTA', `mailbox ${mailbox} is over quota`);
      if (opts.quota === undefined) return { uid: row.uid, size };
      const before = { messages: row.before_messages, bytes: row.before_octets };
      const after = { messages: before.messages + 1, bytes: before.bytes + size };
      const w = opts.quota.warn?.(before, after);
      if (w === undefined) return { uid: row.uid, size, usage: { before, after } };
      // R-S17: the warning in the same transaction, so the next delivery's check counts it.
      const warnBody = w.length > INLINE_BODY_MAX ? await attachBody(tx, w) : null;
      const warningSize = crlfSize(w);
      const stored = await insertMessage(tx, { mailbox, wanted: 0, body: w, head: EMPTY, size: warningSize, uidl: null, received: new Date(), seen: false }, warnBody, undefined);
      return { uid: row.uid, size, usage: { before, after }, warning: { uid: stored.uid!, size: warningSize } };
    });
  }

  /** R-S16: the usage kept on the maildrop's row (migrations/004-delivery.sql), hidden messages included. */
  async usage(mailbox: string): Promise<Usage> {
    checkName(mailbox);
    const [row] = await this.query((sql) => sql<{ messages: number; bytes: number }[]>`
      SELECT messages, octets AS bytes FROM maildrops WHERE name = ${mailbox}`);
    return { messages: row?.messages ?? 0, bytes: row?.bytes ?? 0 };
  }

  async expire(mailbox: string, select: (m: ExpiryCandidate) => boolean, opts: { dryRun?: boolean } = {}): Promise<ExpireResult> {
    checkName(mailbox);
    return this.tx(async (tx) => {
      // FOR UPDATE on the maildrop: an open arriving meanwhile waits for this sweep (R-S18, R-S3).
      const id = await this.lockMaildrop(tx, mailbox, 'update', false);
      if (id === undefined) return { inUse: false, removed: [] };
      await tx`DELETE FROM maildrop_claims WHERE maildrop_id = ${id} AND expires_at < now()`;
      const [claims] = await tx<{ n: number }[]>`SELECT count(*)::int AS n FROM maildrop_claims WHERE maildrop_id = ${id}`;
      if ((claims?.n ?? 0) > 0) return { inUse: true, removed: [] };
      const rows = await tx<(MessageRow & { received: number; hidden: boolean })[]>`
        SELECT uid, size, uidl, retrieved_at IS NOT NULL AS seen, hidden_at IS NOT NULL AS hidden,
               (extract(epoch FROM received_at) * 1000)::float8 AS received
        FROM messages WHERE maildrop_id = ${id} ORDER BY uid`;
      const removed = rows.map((r) => ({ ...info(r), received: r.received, hidden: r.hidden })).filter(select);
      if (opts.dryRun !== true) await removeMessages(tx, id, removed.map((m) => m.uid));
      return { inUse: false, removed };
    });
  }

  async exists(mailbox: string): Promise<boolean> {
    checkName(mailbox);
    const rows = await this.query((sql) => sql`SELECT 1 FROM maildrops WHERE name = ${mailbox}`);
    return rows.length > 0;
  }

  async create(mailbox: string): Promise<void> {
    checkName(mailbox);
    await this.query((sql) => sql`INSERT INTO maildrops (name) SELECT ${mailbox}
      WHERE NOT EXISTS (SELECT 1 FROM maildrops WHERE name = ${mailbox}) ON CONFLICT (name) DO NOTHING`);
  }

  async releaseClaim(token: string): Promise<void> {
    this.claims.delete(token);
    // Best effort: if the database cannot be reached, the claim lapses with its lease.
    await this.sql`DELETE FROM maildrop_claims WHERE token = ${token}`.catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.renewer !== undefined) clearInterval(this.renewer);
    this.renewer = undefined;
    const tokens = [...this.claims];
    this.claims.clear();
    if (tokens.length > 0) await this.sql`DELETE FROM maildrop_claims WHERE token = ANY(${tokens}::uuid[])`.catch(() => undefined);
    if (this.opts.ownsPool === true) await this.sql.end({ timeout: 5 });
  }

  /** The maildrop's id with its row locked; created first when `create` (else undefined if absent). */
  private async lockMaildrop(tx: TransactionSql, mailbox: string, mode: 'share' | 'update', create: true): Promise<number>;
  private async lockMaildrop(tx: TransactionSql, mailbox: string, mode: 'share' | 'update', create: false): Promise<number | undefined>;
  private async lockMaildrop(tx: TransactionSql, mailbox: string, mode: 'share' | 'update', create: boolean): Promise<number | undefined> {
    for (;;) {
      const [row] = mode === 'share'
        ? await tx<{ id: number }[]>`SELECT id FROM maildrops WHERE name = ${mailbox} FOR SHARE`
        : await tx<{ id: number }[]>`SELECT id FROM maildrops WHERE name = ${mailbox} FOR UPDATE`;
      if (row !== undefined) return row.id;
      if (!create) return undefined;
      await tx`INSERT INTO maildrops (name) VALUES (${mailbox}) ON CONFLICT (name) DO NOTHING`;
    }
  }

  /** Renews this store's claims every third of the lease while it has any. */
  private renewLater(): void {
    if (this.renewer !== undefined) return;
    this.renewer = setInterval(() => {
      if (this.claims.size === 0) {
        clearInterval(this.renewer);
        this.renewer = undefined;
        return;
      }
      const tokens = [...this.claims];
      void this.sql`UPDATE maildrop_claims SET expires_at = now() + make_interval(secs => ${this.leaseSeconds})
        WHERE token = ANY(${tokens}::uuid[])`.catch(() => undefined);
    }, (this.leaseSeconds * 1000) / 3);
    this.renewer.unref();
  }
}

/**
 * The storage interface, shaped by POP3's verbs (DESIGN.md habit 4): open a snapshot, stream one
 * message, commit deletions in UPDATE, deliver. Storage never speaks POP3.
 *
 * Index spaces, named so they are never confused:
 * - message number: 1..n, POP3's numbering; exists only in session/maildrop.ts.
 * - uid: the per-maildrop counter of R-S12; decimal, increasing, persisted, never reused.
 * - storage id: the backend's opaque key for a message (Maildir: the base file name without its
 *   `:2,flags` info; memory: the uid as text).
 */
import { Readable } from 'node:stream';
import type { MessageList } from './message-list.js';

export { MessageList } from './message-list.js';

export interface MessageInfo {
  /** R-S12: per-maildrop unique id, never reused. */
  readonly uid: number;
  /** R-S4: exact octets RETR sends (CRLF line ends, before dot-stuffing), stored at first sight. */
  readonly size: number;
  /** The message was retrieved in an earlier session (Maildir `S` flag); retention uses it. */
  readonly seen: boolean;
  /** Backend key (see above). */
  readonly id: string;
  /**
   * R-X11: the UIDL a client already knows for this message (carried over from another server by
   * import: a Dovecot uidlist, an `X-UIDL:` header). UIDL shows it instead of the uid. Absent for
   * mail poplar received itself. Always passes isValidUidl().
   */
  readonly uidl?: string;
}

/** What deliver() may be told besides the bytes (import uses all of it; LMTP none). */
export interface DeliverOptions {
  /** R-X11: a carried-over UIDL (see MessageInfo.uidl); must pass isValidUidl(). */
  readonly uidl?: string;
  /** When the message first arrived (ms since the epoch), kept for retention; default now. */
  readonly received?: number;
  /** Store it as already retrieved (an imported message the old server had marked seen). */
  readonly seen?: boolean;
  /**
   * R-X18: octets at the start that are this delivery's own (the agent's trace headers, which name
   * the recipient); the rest is the body, which a store may keep once for every message with the
   * same octets (PostgreSQL does; Maildir and memory store each message whole). Default 0.
   */
  readonly bodyOffset?: number;
  /**
   * R-X11 R-S12: the uid this message should get (an import of poplar's own mail, whose UIDL is
   * its decimal uid, so clients keep it). Given when no uid at or above it was given yet in the
   * maildrop (the counter then continues after it); otherwise the message gets the next uid as
   * usual. The result says which it got. A positive safe integer.
   */
  readonly uid?: number;
  /**
   * R-S16: refuse the message, with StorageError('OVER_QUOTA'), when the maildrop would hold more
   * than these limits with it (0 = unlimited). Checked inside the store's commit, under what
   * serialises the maildrop's deliveries across processes and nodes (Maildir: the uidlist lock;
   * PostgreSQL: the maildrop's row), so concurrent deliveries by any number of processes never
   * take it over. The result then carries the usage before and after (DeliveryResult.usage).
   */
  readonly quota?: QuotaLimit;
}

/** R-S16 limits of one delivery (DeliverOptions.quota); 0 = unlimited. */
export interface QuotaLimit {
  readonly bytes: number;
  readonly messages: number;
  /**
   * R-S17: called inside the commit with the usage before and after the message once it is
   * accepted; a message it returns (the warning of a threshold crossed) is stored in the same
   * commit right after it, never refused, and counted by every later check. So a warning is
   * written once per crossing, and the maildrop never holds more than the quota plus nothing.
   */
  readonly warn?: (before: Usage, after: Usage) => Buffer | undefined;
}

/** Messages and exact octets (R-S4 sizes) a maildrop holds now, for quotas (R-S16). */
export interface Usage {
  readonly messages: number;
  readonly bytes: number;
}

/** What retention (R-S18) may know of a message when deciding whether it expired. */
export interface ExpiryCandidate extends MessageInfo {
  /** When the message arrived (ms since the epoch); Maildir: the file's mtime, as Dovecot keeps it. */
  readonly received: number;
  /** R-X12: hidden by a POP3 DELE in `hide` mode (CommitChanges.hide); POP3 no longer lists it. */
  readonly hidden: boolean;
}

export interface ExpireResult {
  /**
   * A live session (of this or another process) has the maildrop open: nothing was removed,
   * because every message is in that session's snapshot (R-S3). Try again after it ends.
   */
  readonly inUse: boolean;
  /** The messages removed (or, with dryRun, that would have been), ascending uid. */
  readonly removed: readonly ExpiryCandidate[];
}

export interface OpenOptions {
  /** R-S3 opt-in RFC-strict mode: fail with StorageError('MAILBOX_LOCKED') if another session holds it. */
  readonly exclusive: boolean;
}

export interface MailStore {
  /**
   * R-S3: takes a snapshot of the maildrop (creating an empty one if it does not exist yet).
   * Messages other programs dropped in are given a uid and exact size here, once.
   * Hidden messages (CommitChanges.hide; Maildir: any file with the `T` flag) are left out.
   */
  open(mailbox: string, opts: OpenOptions): Promise<MaildropSnapshot>;
  /**
   * Stores one message durably and returns its uid and exact size. R-X6: when it resolves, the
   * message is on stable storage and visible whole; when it rejects, nothing of it is visible.
   */
  deliver(mailbox: string, message: Buffer | AsyncIterable<Buffer>, opts?: DeliverOptions): Promise<DeliveryResult>;
  /** R-S16: what the maildrop holds now (zero for one that does not exist); creates nothing. */
  usage(mailbox: string): Promise<Usage>;
  /**
   * R-S18: removes the messages `select` picks, unless any session has the maildrop open (then
   * removes nothing and says so). A session opened while this runs waits for it, so no snapshot
   * ever lists a message this removes. With `dryRun`, reports what it would remove.
   */
  expire(mailbox: string, select: (m: ExpiryCandidate) => boolean, opts?: { dryRun?: boolean }): Promise<ExpireResult>;
  /** Whether the maildrop exists (has been created or delivered to). */
  exists(mailbox: string): Promise<boolean>;
  /** Creates an empty maildrop; no error if it exists. */
  create(mailbox: string): Promise<void>;
  /** Releases whatever the store holds (pools, watchers). */
  close(): Promise<void>;
}

export interface DeliveryResult {
  readonly uid: number;
  readonly size: number;
  /**
   * With DeliverOptions.quota: the maildrop's usage (as the quota counts it) just before this
   * message and with it, read in the same commit, so of concurrent deliveries each sees its own
   * step (R-S17: one warning per crossing).
   */
  readonly usage?: { readonly before: Usage; readonly after: Usage };
  /** The warning QuotaLimit.warn asked for, stored after the message (usage.after leaves it out). */
  readonly warning?: { readonly uid: number; readonly size: number };
}

/** Whether `usage` plus one message of `size` octets goes over `quota` (0 = unlimited). */
export function overQuota(usage: Usage, size: number, quota: QuotaLimit): boolean {
  return (quota.bytes > 0 && usage.bytes + size > quota.bytes) || (quota.messages > 0 && usage.messages + 1 > quota.messages);
}

/** R-X11 / RFC 1939 §7: a UIDL is 1 to 70 characters in 0x21..0x7E. */
export function isValidUidl(uidl: string): boolean {
  return /^[\x21-\x7e]{1,70}$/.test(uidl);
}

export interface CommitChanges {
  /** Storage ids to remove (R-K4: only ever called from UPDATE). Missing ones are not an error. */
  readonly expunge: readonly string[];
  /** Storage ids to mark seen (retrieved). Missing ones are not an error. */
  readonly seen: readonly string[];
  /**
   * R-X12 `delete_mode = "hide"`: storage ids to keep but hide from POP3 for good (only ever
   * called from UPDATE). No later open() lists them and their uids are never reused; other
   * programs still see them (Maildir: the `T` trashed flag). Retention counts them as retrieved
   * (ExpiryCandidate.hidden). Missing ones are not an error.
   */
  readonly hide?: readonly string[];
}

/** A message's stored bytes, chunk by chunk (MaildropSnapshot.open). */
export interface MessageSource {
  /**
   * The next chunk, or undefined at the end (after which the source is closed). A chunk may be a
   * pooled buffer (protocol/chunk-pool.ts): the consumer gives it back once done with it. A failed
   * read throws (or rejects) and closes the source.
   */
  next(): Buffer | undefined | Promise<Buffer | undefined>;
  /** Releases what the source holds (a file descriptor); safe to call again and before the end. */
  close(): void;
}

/** A Readable over a source (what read() returns): closes the source when the stream closes. */
export function readableOf(source: MessageSource): Readable {
  const stream = Readable.from(
    (async function* () {
      for (;;) {
        const chunk = await source.next();
        if (chunk === undefined) return;
        yield chunk;
      }
    })(),
    // One chunk read ahead at most: memory per session stays a couple of chunks.
    { objectMode: true, highWaterMark: 1 },
  );
  stream.once('close', () => source.close());
  return stream;
}

/** A source over a Readable, for a store without open(): its chunks as Buffers; close() destroys it. */
export function sourceOf(stream: Readable): MessageSource {
  const chunks = stream[Symbol.asyncIterator]();
  let closed = false;
  return {
    next: async () => {
      if (closed) return undefined;
      const r = await chunks.next();
      if (r.done === true) return undefined;
      const c = r.value as Uint8Array | string;
      return typeof c === 'string' ? Buffer.from(c, 'latin1') : Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.length);
    },
    close: () => {
      closed = true;
      stream.destroy();
    },
  };
}

/**
 * The message's bytes for RETR/TOP: the snapshot's open(), or its read() for a store without.
 * `at`: the message's position in `snapshot.list`, when the caller knows it.
 */
export async function openMessage(snapshot: MaildropSnapshot, id: string, at?: number): Promise<MessageSource> {
  return snapshot.open === undefined ? sourceOf(await snapshot.read(id)) : snapshot.open(id, at);
}

export interface MaildropSnapshot {
  readonly mailbox: string;
  /**
   * The messages at open time, ascending uid, in compact form (message-list.ts). Never changes
   * during the session (R-S3); snapshots of the same listing share one list. Sessions use this.
   */
  readonly list: MessageList;
  /**
   * The same messages as objects (`list.toArray()`, made at the first use and kept by the
   * snapshot): for tools (import, export) and tests, not for sessions (R-X9: one object per
   * message is what the compact list avoids).
   */
  readonly messages: readonly MessageInfo[];
  /**
   * The stored bytes of one message, as stored (any line endings). Rejects with
   * StorageError('MESSAGE_GONE') if it was expunged since the snapshot (R-S3).
   */
  read(id: string): Promise<Readable>;
  /**
   * The same bytes as read(), for RETR and TOP: chunk by chunk, each returned synchronously when
   * the backend can read without waiting (a Maildir file on the event loop), so a whole message
   * costs no stream machinery. Rejects as read() does. Optional (poplar's stores have it): a
   * store without it is read through read() (openMessage below). `at`, when given, is the
   * message's position in `list` (a hint: a store may skip looking the id up; a wrong one is
   * ignored).
   */
  open?(id: string, at?: number): Promise<MessageSource>;
  /** R-K4 / R-S11: applies the changes; repeating it after a partial failure is harmless. */
  commit(changes: CommitChanges): Promise<void>;
  /** Releases the snapshot's locks without changing anything. Safe to call more than once. */
  release(): Promise<void>;
}

/**
 * Mailbox (maildrop) names reach the file system: every store checks them with the one rule for
 * user and maildrop names (user-name.ts), the rule the admin CLI and the directory use.
 */
export { isValidUserName as isValidMailboxName } from '../user-name.js';

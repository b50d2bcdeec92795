/**
 * The in-memory reference backend (DESIGN.md habit 4): the simplest store that has every
 * behaviour the conformance suite asks for. Storage id = the uid as decimal text.
 *
 * Lock rule (R-S3 opt-in exclusive mode), the same in every backend:
 * - an exclusive open fails with MAILBOX_LOCKED while any other snapshot of that mailbox is open;
 * - any open fails with MAILBOX_LOCKED while an exclusive snapshot of that mailbox is open;
 * - release() ends the snapshot's claim; a released snapshot can no longer read or commit.
 */
import type { Readable } from 'node:stream';
import { StorageError } from '../../errors.js';
import { crlfSize } from '../../protocol/crlf.js';
import { BODY_READ_CHUNK } from '../../protocol/limits.js';
import {
  isValidMailboxName,
  isValidUidl,
  overQuota,
  readableOf,
  type CommitChanges,
  type DeliverOptions,
  type DeliveryResult,
  type ExpireResult,
  type ExpiryCandidate,
  type MailStore,
  type MaildropSnapshot,
  type MessageInfo,
  type MessageSource,
  type OpenOptions,
  type Usage,
} from '../mail-store.js';
import { MessageList } from '../message-list.js';

interface StoredMessage {
  readonly uid: number;
  readonly size: number;
  readonly bytes: Buffer;
  readonly uidl: string | undefined;
  readonly received: number;
  seen: boolean;
  /** R-X12: hidden from POP3 by a DELE in `hide` mode (Maildir's `T` flag); never listed again. */
  hidden: boolean;
}

export interface MemoryMailStoreOptions {
  /** Clock for the arrival time of delivered messages (ms since the epoch). */
  readonly now?: () => number;
}

function info(id: string, m: StoredMessage): MessageInfo {
  const base = { uid: m.uid, size: m.size, seen: m.seen, id };
  return m.uidl === undefined ? base : { ...base, uidl: m.uidl };
}

interface Maildrop {
  /** R-S12: the next uid; only ever grows. */
  nextUid: number;
  /** Keyed by storage id. */
  readonly messages: Map<string, StoredMessage>;
  openSnapshots: number;
  exclusiveHeld: boolean;
}

export class MemoryMailStore implements MailStore {
  private readonly maildrops = new Map<string, Maildrop>();
  private readonly now: () => number;

  constructor(opts: MemoryMailStoreOptions = {}) {
    this.now = opts.now ?? Date.now;
  }

  async open(mailbox: string, opts: OpenOptions): Promise<MaildropSnapshot> {
    const drop = this.maildrop(mailbox);
    if (drop.exclusiveHeld || (opts.exclusive && drop.openSnapshots > 0)) {
      throw new StorageError('MAILBOX_LOCKED', `mailbox ${mailbox} is in use`);
    }
    drop.openSnapshots++;
    if (opts.exclusive) drop.exclusiveHeld = true;
    const messages: MessageInfo[] = [...drop.messages.entries()]
      .filter(([, m]) => !m.hidden)
      .map(([id, m]) => info(id, m))
      .sort((a, b) => a.uid - b.uid);
    return new MemorySnapshot(mailbox, drop, MessageList.from(messages), opts.exclusive);
  }

  async deliver(mailbox: string, message: Buffer | AsyncIterable<Buffer>, opts: DeliverOptions = {}): Promise<DeliveryResult> {
    checkName(mailbox);
    checkUidl(opts.uidl);
    // Collect the whole message first: a failing source delivers nothing (R-X6).
    const chunks: Buffer[] = [];
    if (Buffer.isBuffer(message)) chunks.push(Buffer.from(message));
    else for await (const chunk of message) chunks.push(Buffer.from(chunk));
    const bytes = Buffer.concat(chunks);
    const size = crlfSize(bytes);
    // R-S16: checked and stored with no await in between (one process holds the whole store).
    const before = opts.quota === undefined ? undefined : this.usageNow(mailbox);
    if (before !== undefined && overQuota(before, size, opts.quota!)) throw new StorageError('OVER_QUOTA', `mailbox ${mailbox} is over quota`);
    const drop = this.maildrop(mailbox);
    const uid = Math.max(drop.nextUid, opts.uid ?? 0);
    drop.nextUid = uid + 1;
    const received = opts.received ?? this.now();
    drop.messages.set(String(uid), { uid, size, bytes, uidl: opts.uidl, received, seen: opts.seen === true, hidden: false });
    if (before === undefined) return { uid, size };
    const after = { messages: before.messages + 1, bytes: before.bytes + size };
    const w = opts.quota!.warn?.(before, after);
    if (w === undefined) return { uid, size, usage: { before, after } };
    const warning = { uid: drop.nextUid++, size: crlfSize(w) };
    drop.messages.set(String(warning.uid), { ...warning, bytes: Buffer.from(w), uidl: undefined, received, seen: false, hidden: false });
    return { uid, size, usage: { before, after }, warning };
  }

  async usage(mailbox: string): Promise<Usage> {
    checkName(mailbox);
    return this.usageNow(mailbox);
  }

  private usageNow(mailbox: string): Usage {
    let bytes = 0;
    const messages = this.maildrops.get(mailbox)?.messages ?? new Map<string, StoredMessage>();
    for (const m of messages.values()) bytes += m.size;
    return { messages: messages.size, bytes };
  }

  async expire(
    mailbox: string,
    select: (m: ExpiryCandidate) => boolean,
    opts: { dryRun?: boolean } = {},
  ): Promise<ExpireResult> {
    checkName(mailbox);
    const drop = this.maildrops.get(mailbox);
    if (drop === undefined) return { inUse: false, removed: [] };
    if (drop.openSnapshots > 0 || drop.exclusiveHeld) return { inUse: true, removed: [] };
    const removed = [...drop.messages]
      .map(([id, m]) => ({ ...info(id, m), received: m.received, hidden: m.hidden }))
      .filter(select)
      .sort((a, b) => a.uid - b.uid);
    if (opts.dryRun !== true) for (const m of removed) drop.messages.delete(m.id);
    return { inUse: false, removed };
  }

  async exists(mailbox: string): Promise<boolean> {
    checkName(mailbox);
    return this.maildrops.has(mailbox);
  }

  async create(mailbox: string): Promise<void> {
    this.maildrop(mailbox);
  }

  async close(): Promise<void> {}

  private maildrop(mailbox: string): Maildrop {
    checkName(mailbox);
    let drop = this.maildrops.get(mailbox);
    if (drop === undefined) {
      drop = { nextUid: 1, messages: new Map(), openSnapshots: 0, exclusiveHeld: false };
      this.maildrops.set(mailbox, drop);
    }
    return drop;
  }
}

class MemorySnapshot implements MaildropSnapshot {
  private released = false;
  private objects: readonly MessageInfo[] | undefined;
  private readonly ids: { has(id: string): boolean };

  constructor(
    readonly mailbox: string,
    private readonly drop: Maildrop,
    readonly list: MessageList,
    private readonly exclusive: boolean,
  ) {
    this.ids = { has: (id) => list.indexOf(id) >= 0 };
  }

  get messages(): readonly MessageInfo[] {
    return (this.objects ??= Object.freeze(this.list.toArray()));
  }

  async read(id: string): Promise<Readable> {
    return readableOf(await this.open(id));
  }

  async open(id: string): Promise<MessageSource> {
    this.checkLive();
    const stored = this.ids.has(id) ? this.drop.messages.get(id) : undefined;
    if (stored === undefined) throw new StorageError('MESSAGE_GONE', `message ${id} is gone`);
    const bytes = stored.bytes;
    // Chunked like a file read, so consumers see the same shape as with Maildir.
    let at = 0;
    return {
      next: () => {
        if (at >= bytes.length) return undefined;
        const chunk = bytes.subarray(at, at + BODY_READ_CHUNK);
        at += chunk.length;
        return chunk;
      },
      close: () => {
        at = bytes.length;
      },
    };
  }

  async commit(changes: CommitChanges): Promise<void> {
    this.checkLive();
    // Ids outside this snapshot are ignored: a session only changes what it was shown.
    for (const id of changes.expunge) if (this.ids.has(id)) this.drop.messages.delete(id);
    for (const id of changes.seen) {
      const stored = this.ids.has(id) ? this.drop.messages.get(id) : undefined;
      if (stored !== undefined) stored.seen = true;
    }
    for (const id of changes.hide ?? []) {
      const stored = this.ids.has(id) ? this.drop.messages.get(id) : undefined;
      if (stored !== undefined) stored.hidden = true;
    }
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.drop.openSnapshots--;
    if (this.exclusive) this.drop.exclusiveHeld = false;
  }

  private checkLive(): void {
    if (this.released) throw new StorageError('IO', `snapshot of ${this.mailbox} was released`);
  }
}

function checkUidl(uidl: string | undefined): void {
  if (uidl !== undefined && !isValidUidl(uidl)) {
    throw new StorageError('INVALID_UIDL', `invalid UIDL ${JSON.stringify(uidl)}`);
  }
}

function checkName(mailbox: string): void {
  if (!isValidMailboxName(mailbox)) {
    throw new StorageError('INVALID_NAME', `invalid mailbox name ${JSON.stringify(mailbox)}`);
  }
}

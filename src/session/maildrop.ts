/**
 * The session's view of its maildrop snapshot (R-S3): message numbers, deletion marks, and what
 * was retrieved. Index spaces: a *message number* is POP3's 1..n for this session (RFC 1939 §5);
 * `index` is number - 1 into the snapshot; `uid` and storage `id` are the store's (mail-store.ts).
 */
import { Pop3Error } from '../errors.js';
import { lacksEndOfHeaders, type ClientWorkaround } from '../protocol/dot-stuffing.js';
import type { MaildropSnapshot, MessageInfo, MessageList } from '../storage/mail-store.js';

/** R-X12 `pop3.delete_mode`: what UPDATE does with the messages marked deleted. */
export type DeleteMode = 'expunge' | 'hide';

/** Messages whose header blocks are read at once at login for oe-ns-eoh sizing. */
const EOH_SCAN_PARALLEL = 8;

export class Maildrop {
  /** Per snapshot index: 1 when marked deleted (one octet per message, R-X9). */
  private readonly deleted: Uint8Array;
  private readonly retrieved = new Set<string>();
  /** R-K7: highest message number accessed (RETR or DELE) in this session; 0 after RSET. */
  private highestAccessed = 0;
  /** The snapshot's messages, shared with other sessions of the same listing (never copied). */
  private readonly list: MessageList;
  /** Per snapshot index, the sizes this session reports when not the stored ones (open()). */
  private readonly sizes: Float64Array | undefined;

  /** `sizes`: per snapshot index, the octets RETR sends when not the stored size (open()). */
  constructor(readonly snapshot: MaildropSnapshot, sizes?: Float64Array) {
    this.list = snapshot.list;
    this.sizes = sizes;
    this.deleted = new Uint8Array(this.list.length);
  }

  /**
   * The maildrop of a session whose RETR/TOP apply `workarounds` (R-X12). With `oe-ns-eoh`,
   * stuffBody sends 2 more octets for a message without an empty line than its stored size, and
   * the stored size cannot tell which messages those are: so, to keep STAT/LIST/RETR sizes exact
   * (R-S4), each message's header block is read here, once per login (up to the first empty line;
   * the whole message for one that has none), and 2 is added to the size of each message that
   * lacks one. That is one read per message at login, the price of this workaround, which is off
   * by default. A message that cannot be read now keeps its stored size (RETR of it fails anyway).
   */
  static async open(snapshot: MaildropSnapshot, workarounds: readonly ClientWorkaround[]): Promise<Maildrop> {
    if (!workarounds.includes('oe-ns-eoh')) return new Maildrop(snapshot);
    const list = snapshot.list;
    const sizes = new Float64Array(list.length);
    for (let i = 0; i < list.length; i++) sizes[i] = list.size(i);
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < list.length; i = next++) {
        try {
          if (await lacksEndOfHeaders(await snapshot.read(list.id(i)))) sizes[i] = list.size(i) + 2;
        } catch {
          // Gone or unreadable since the snapshot: RETR/TOP of it answer -ERR, LIST shows the stored size.
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(EOH_SCAN_PARALLEL, list.length) }, worker));
    return new Maildrop(snapshot, sizes);
  }

  get mailbox(): string {
    return this.snapshot.mailbox;
  }

  /** Number of messages in the snapshot, deleted ones included (the highest message number). */
  get count(): number {
    return this.list.length;
  }

  /** R-K5: the live message for a number, or the -ERR a client gets for it. */
  get(msg: number): MessageInfo {
    const i = this.check(msg);
    const info = this.list.at(i);
    return this.sizes === undefined ? info : { ...info, size: this.sizes[i]! };
  }

  /** R-K5: the snapshot index of a live message number, or the -ERR a client gets for it. */
  check(msg: number): number {
    if (!(msg >= 1 && msg <= this.list.length)) throw new Pop3Error('NO_SUCH_MESSAGE', 'No such message');
    if (this.deleted[msg - 1] === 1) throw new Pop3Error('MESSAGE_DELETED', 'Message is deleted');
    return msg - 1;
  }

  isDeleted(msg: number): boolean {
    return this.deleted[msg - 1] === 1;
  }

  /** R-S4: the octets RETR sends for snapshot index `i`. */
  sizeAt(i: number): number {
    return this.sizes === undefined ? this.list.size(i) : this.sizes[i]!;
  }

  /** R-S12 the uid, or R-X11 the carried-over UIDL, of snapshot index `i`. */
  uidlAt(i: number): number | string {
    return this.list.uidl(i) ?? this.list.uid(i);
  }

  /** STAT: count and total exact size of messages not marked deleted (RFC 1939 §5, R-S4). */
  stat(): { count: number; size: number } {
    let count = 0;
    let size = 0;
    const n = this.list.length;
    for (let i = 0; i < n; i++) {
      if (this.deleted[i] === 0) {
        count++;
        size += this.sizeAt(i);
      }
    }
    return { count, size };
  }

  dele(msg: number): void {
    this.deleted[this.check(msg)] = 1;
    this.access(msg);
  }

  /** RFC 1939 §5 RSET: unmark all; RFC 1460: LAST goes back to 0. */
  rset(): void {
    this.deleted.fill(0);
    this.highestAccessed = 0;
  }

  /** A whole message was sent to the client: mark it seen at the end of the session. */
  markRetrieved(msg: number): void {
    if (msg >= 1 && msg <= this.list.length) this.retrieved.add(this.list.id(msg - 1));
    this.access(msg);
  }

  get last(): number {
    return this.highestAccessed;
  }

  private access(msg: number): void {
    if (msg > this.highestAccessed) this.highestAccessed = msg;
  }

  /**
   * What UPDATE applies (R-K4): the storage ids marked deleted, and those retrieved. R-X12: with
   * `hide`, the marked messages are hidden from POP3 instead of removed (still marked seen if
   * retrieved); with `expunge` (the default) they are removed.
   */
  changes(mode: DeleteMode = 'expunge'): { expunge: string[]; hide: string[]; seen: string[] } {
    const marked: string[] = [];
    for (let i = 0; i < this.list.length; i++) if (this.deleted[i] === 1) marked.push(this.list.id(i));
    if (mode === 'hide') return { expunge: [], hide: marked, seen: [...this.retrieved] };
    const gone = new Set(marked);
    return { expunge: marked, hide: [], seen: [...this.retrieved].filter((id) => !gone.has(id)) };
  }

  /** Messages marked deleted now. */
  get markedCount(): number {
    let marked = 0;
    for (let i = 0; i < this.deleted.length; i++) marked += this.deleted[i]!;
    return marked;
  }

  /** Retrieved marks only: what a session that ends without QUIT still records. */
  seenOnly(): { expunge: string[]; seen: string[] } {
    return { expunge: [], seen: [...this.retrieved] };
  }
}

/**
 * The session's view of its maildrop snapshot (R-S3): message numbers, deletion marks, and what
 * was retrieved. Index spaces: a *message number* is POP3's 1..n for this session (RFC 1939 §5);
 * `index` is number - 1 into the snapshot; `uid` and storage `id` are the store's (mail-store.ts).
 */
import { Pop3Error } from '../errors.js';
import { lacksEndOfHeaders, type ClientWorkaround } from '../protocol/dot-stuffing.js';
import type { MaildropSnapshot, MessageInfo } from '../storage/mail-store.js';

/** R-X12 `pop3.delete_mode`: what UPDATE does with the messages marked deleted. */
export type DeleteMode = 'expunge' | 'hide';

/** Messages whose header blocks are read at once at login for oe-ns-eoh sizing. */
const EOH_SCAN_PARALLEL = 8;

export class Maildrop {
  private readonly deleted: boolean[];
  private readonly retrieved = new Set<string>();
  /** R-K7: highest message number accessed (RETR or DELE) in this session; 0 after RSET. */
  private highestAccessed = 0;
  /** The snapshot's messages, with the sizes this session reports (R-S4; see open()). */
  private readonly messages: readonly MessageInfo[];

  /** `sizes`: per snapshot index, the octets RETR sends when not the stored size (open()). */
  constructor(readonly snapshot: MaildropSnapshot, sizes?: readonly number[]) {
    this.messages = sizes === undefined ? snapshot.messages : snapshot.messages.map((m, i) => ({ ...m, size: sizes[i] ?? m.size }));
    this.deleted = snapshot.messages.map(() => false);
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
    const messages = snapshot.messages;
    const sizes = messages.map((m) => m.size);
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < messages.length; i = next++) {
        try {
          if (await lacksEndOfHeaders(await snapshot.read(messages[i]!.id))) sizes[i] = messages[i]!.size + 2;
        } catch {
          // Gone or unreadable since the snapshot: RETR/TOP of it answer -ERR, LIST shows the stored size.
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(EOH_SCAN_PARALLEL, messages.length) }, worker));
    return new Maildrop(snapshot, sizes);
  }

  get mailbox(): string {
    return this.snapshot.mailbox;
  }

  /** Number of messages in the snapshot, deleted ones included (the highest message number). */
  get count(): number {
    return this.messages.length;
  }

  /** R-K5: the live message for a number, or the -ERR a client gets for it. */
  get(msg: number): MessageInfo {
    const info = msg >= 1 ? this.messages[msg - 1] : undefined;
    if (info === undefined) throw new Pop3Error('NO_SUCH_MESSAGE', 'No such message');
    if (this.deleted[msg - 1]) throw new Pop3Error('MESSAGE_DELETED', 'Message is deleted');
    return info;
  }

  isDeleted(msg: number): boolean {
    return this.deleted[msg - 1] === true;
  }

  /** STAT: count and total exact size of messages not marked deleted (RFC 1939 §5, R-S4). */
  stat(): { count: number; size: number } {
    let count = 0;
    let size = 0;
    this.messages.forEach((m, i) => {
      if (!this.deleted[i]) {
        count++;
        size += m.size;
      }
    });
    return { count, size };
  }

  dele(msg: number): void {
    this.get(msg);
    this.deleted[msg - 1] = true;
    this.access(msg);
  }

  /** RFC 1939 §5 RSET: unmark all; RFC 1460: LAST goes back to 0. */
  rset(): void {
    this.deleted.fill(false);
    this.highestAccessed = 0;
  }

  /** A whole message was sent to the client: mark it seen at the end of the session. */
  markRetrieved(msg: number): void {
    const info = this.messages[msg - 1];
    if (info !== undefined) this.retrieved.add(info.id);
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
    const marked = this.messages.filter((_, i) => this.deleted[i]).map((m) => m.id);
    if (mode === 'hide') return { expunge: [], hide: marked, seen: [...this.retrieved] };
    const gone = new Set(marked);
    return { expunge: marked, hide: [], seen: [...this.retrieved].filter((id) => !gone.has(id)) };
  }

  /** Messages marked deleted now. */
  get markedCount(): number {
    return this.deleted.filter(Boolean).length;
  }

  /** Retrieved marks only: what a session that ends without QUIT still records. */
  seenOnly(): { expunge: string[]; seen: string[] } {
    return { expunge: [], seen: [...this.retrieved] };
  }
}

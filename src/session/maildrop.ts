/**
 * The session's view of its maildrop snapshot (R-S3): message numbers, deletion marks, and what
 * was retrieved. Index spaces: a *message number* is POP3's 1..n for this session (RFC 1939 §5);
 * `index` is number - 1 into the snapshot; `uid` and storage `id` are the store's (mail-store.ts).
 */
import { Pop3Error } from '../errors.js';
import type { MaildropSnapshot, MessageInfo } from '../storage/mail-store.js';

export class Maildrop {
  private readonly deleted: boolean[];
  private readonly retrieved = new Set<string>();
  /** R-K7: highest message number accessed (RETR or DELE) in this session; 0 after RSET. */
  private highestAccessed = 0;

  constructor(readonly snapshot: MaildropSnapshot) {
    this.deleted = snapshot.messages.map(() => false);
  }

  get mailbox(): string {
    return this.snapshot.mailbox;
  }

  /** Number of messages in the snapshot, deleted ones included (the highest message number). */
  get count(): number {
    return this.snapshot.messages.length;
  }

  /** R-K5: the live message for a number, or the -ERR a client gets for it. */
  get(msg: number): MessageInfo {
    const info = msg >= 1 ? this.snapshot.messages[msg - 1] : undefined;
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
    this.snapshot.messages.forEach((m, i) => {
      if (!this.deleted[i]) {
        count++;
        size += m.size;
      }
    });
    return { count, size };
  }

  /** Live messages with their message numbers, for LIST and UIDL without an argument. */
  *live(): Generator<{ msg: number; info: MessageInfo }> {
    const messages = this.snapshot.messages;
    for (let i = 0; i < messages.length; i++) {
      if (!this.deleted[i]) yield { msg: i + 1, info: messages[i]! };
    }
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
    const info = this.snapshot.messages[msg - 1];
    if (info !== undefined) this.retrieved.add(info.id);
    this.access(msg);
  }

  get last(): number {
    return this.highestAccessed;
  }

  private access(msg: number): void {
    if (msg > this.highestAccessed) this.highestAccessed = msg;
  }

  /** What UPDATE applies (R-K4): the storage ids marked deleted, and those retrieved. */
  changes(): { expunge: string[]; seen: string[] } {
    const expunge = this.snapshot.messages.filter((_, i) => this.deleted[i]).map((m) => m.id);
    const gone = new Set(expunge);
    return { expunge, seen: [...this.retrieved].filter((id) => !gone.has(id)) };
  }

  /** Retrieved marks only: what a session that ends without QUIT still records. */
  seenOnly(): { expunge: string[]; seen: string[] } {
    return { expunge: [], seen: [...this.retrieved] };
  }
}

/**
 * The messages of a snapshot (R-S3) in a compact, immutable form (R-X9 bounded memory, R-S4
 * sizes stored once): uids and sizes in typed arrays, the seen mark in one octet, a reference to
 * each storage id string (the backend's own string: Maildir shares its uidlist's; none where the
 * id is the uid as text, PostgreSQL's ofUids), and the
 * carried-over UIDLs (R-X11) in a sparse map, instead of one object per message. A maildrop's
 * list is built once and shared by every snapshot and session that sees the same listing.
 * Positions are snapshot indexes (message number − 1), ascending uid.
 */
import type { MessageInfo } from './mail-store.js';

/** The slot of `uid` among the first `count` entries of ascending `uids`, or -1 (binary search). */
export function searchUids(uids: ArrayLike<number>, count: number, uid: number): number {
  let lo = 0;
  let hi = count - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const u = uids[mid]!;
    if (u === uid) return mid;
    if (u < uid) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

const SEEN = 1;

export class MessageList {
  /** Position + 1 of each id by hash (open addressing), built at the first indexOf(). */
  private index: Int32Array | undefined;

  /** Takes ownership of the arrays: nothing may change them afterwards. */
  constructor(
    private readonly uids: Float64Array,
    private readonly sizes: Float64Array,
    private readonly flags: Uint8Array,
    /** The storage ids; undefined: each message's id is its uid as decimal text (ofUids). */
    private readonly ids: readonly string[] | undefined,
    /** Position -> R-X11 carried-over UIDL; undefined when no message has one. */
    private readonly uidls: ReadonlyMap<number, string> | undefined,
  ) {}

  static readonly EMPTY = new MessageList(new Float64Array(0), new Float64Array(0), new Uint8Array(0), [], undefined);

  /**
   * A list whose storage ids are the uids as decimal text (PostgreSQL): no string per message,
   * 17 octets per message (R-X9). `uids` ascending; takes ownership of the arrays.
   */
  static ofUids(uids: Float64Array, sizes: Float64Array, flags: Uint8Array, uidls: ReadonlyMap<number, string> | undefined): MessageList {
    return new MessageList(uids, sizes, flags, undefined, uidls);
  }

  /** A list of `infos` (ascending uid). */
  static from(infos: readonly MessageInfo[]): MessageList {
    const b = new MessageListBuilder(infos.length);
    for (const m of infos) b.add(m.uid, m.size, m.seen, m.id, m.uidl);
    return b.finish();
  }

  get length(): number {
    return this.uids.length;
  }

  uid(i: number): number {
    return this.uids[i]!;
  }

  /** R-S4: the exact octets RETR sends. */
  size(i: number): number {
    return this.sizes[i]!;
  }

  seen(i: number): boolean {
    return (this.flags[i]! & SEEN) !== 0;
  }

  id(i: number): string {
    return this.ids === undefined ? String(this.uids[i]!) : this.ids[i]!;
  }

  /** R-X11: the carried-over UIDL, undefined for mail poplar received itself. */
  uidl(i: number): string | undefined {
    return this.uidls?.get(i);
  }

  /** One message as an object (made on each call). */
  at(i: number): MessageInfo {
    const info = { uid: this.uid(i), size: this.size(i), seen: this.seen(i), id: this.id(i) };
    const uidl = this.uidl(i);
    return uidl === undefined ? info : { ...info, uidl };
  }

  /** Every message as an object (tools and tests; sessions use the accessors). */
  toArray(): MessageInfo[] {
    const out: MessageInfo[] = new Array(this.length);
    for (let i = 0; i < this.length; i++) out[i] = this.at(i);
    return out;
  }

  /** The position of storage id `id`, or -1; `at`: where the caller expects it (checked first). */
  indexOf(id: string, at?: number): number {
    if (this.ids === undefined) return this.indexOfUid(id, at);
    if (at !== undefined && this.ids[at] === id) return at;
    const index = (this.index ??= this.buildIndex());
    const mask = index.length - 1;
    for (let slot = hash(id) & mask; ; slot = (slot + 1) & mask) {
      const p = index[slot]!;
      if (p === 0) return -1;
      if (this.ids[p - 1] === id) return p - 1;
    }
  }

  /** indexOf for a list of ofUids(): the id read as a uid, found by binary search. */
  private indexOfUid(id: string, at?: number): number {
    const uid = Number(id);
    if (!Number.isSafeInteger(uid) || String(uid) !== id) return -1;
    if (at !== undefined && this.uids[at] === uid) return at;
    return searchUids(this.uids, this.uids.length, uid);
  }

  private buildIndex(): Int32Array {
    const ids = this.ids!;
    let cap = 8;
    while (cap < this.length * 2) cap *= 2;
    const index = new Int32Array(cap);
    const mask = cap - 1;
    for (let i = 0; i < this.length; i++) {
      let slot = hash(ids[i]!) & mask;
      while (index[slot] !== 0) slot = (slot + 1) & mask;
      index[slot] = i + 1;
    }
    return index;
  }
}

/** Fills a MessageList message by message; `n` is an upper bound of the count. */
export class MessageListBuilder {
  private readonly uids: Float64Array;
  private readonly sizes: Float64Array;
  private readonly flags: Uint8Array;
  private readonly ids: string[] = [];
  private uidls: Map<number, string> | undefined;

  constructor(n: number) {
    this.uids = new Float64Array(n);
    this.sizes = new Float64Array(n);
    this.flags = new Uint8Array(n);
  }

  get length(): number {
    return this.uids.length;
  }

  add(uid: number, size: number, seen: boolean, id: string, uidl: string | undefined): void {
    const i = this.ids.length;
    this.uids[i] = uid;
    this.sizes[i] = size;
    this.flags[i] = seen ? SEEN : 0;
    this.ids.push(id);
    if (uidl !== undefined) (this.uidls ??= new Map()).set(i, uidl);
  }

  finish(): MessageList {
    const n = this.ids.length;
    const cut = <T extends Float64Array | Uint8Array>(a: T): T => (a.length === n ? a : (a.slice(0, n) as T));
    return new MessageList(cut(this.uids), cut(this.sizes), cut(this.flags), this.ids, this.uidls);
  }

  /**
   * The list in ascending uid order (a builder filled in another order), and `order`: the
   * builder position of each message of the list, for data the caller keeps beside it.
   */
  finishByUid(): { list: MessageList; order: Uint32Array } {
    const n = this.ids.length;
    const order = byUid(this.uids, n);
    const uids = new Float64Array(n);
    const sizes = new Float64Array(n);
    const flags = new Uint8Array(n);
    const ids: string[] = new Array(n);
    let uidls: Map<number, string> | undefined;
    for (let k = 0; k < n; k++) {
      const i = order[k]!;
      uids[k] = this.uids[i]!;
      sizes[k] = this.sizes[i]!;
      flags[k] = this.flags[i]!;
      ids[k] = this.ids[i]!;
      const u = this.uidls?.get(i);
      if (u !== undefined) (uidls ??= new Map()).set(k, u);
    }
    return { list: new MessageList(uids, sizes, flags, ids, uidls), order };
  }
}

/**
 * Positions 0..n-1 of `uids` in ascending uid order. Uids are dense (assigned consecutively,
 * R-S12), so placing each at uid - min is O(n); sparse ones (many removed) fall back to a sort.
 */
function byUid(uids: Float64Array, n: number): Uint32Array {
  const order = new Uint32Array(n);
  if (n === 0) return order;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const u = uids[i]!;
    if (u < min) min = u;
    if (u > max) max = u;
  }
  const span = max - min + 1;
  if (span <= 4 * n + 64) {
    const slots = new Int32Array(span).fill(-1);
    for (let i = 0; i < n; i++) slots[uids[i]! - min] = i;
    let k = 0;
    for (let s = 0; s < span; s++) if (slots[s]! >= 0) order[k++] = slots[s]!;
    if (k === n) return order; // no uid twice (the uidlist gives each name its own)
  }
  for (let i = 0; i < n; i++) order[i] = i;
  return order.sort((a, b) => uids[a]! - uids[b]!);
}

/** FNV-1a over the UTF-16 code units. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

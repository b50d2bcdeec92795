/**
 * The live records of a `poplar-uidlist` (maildir-uidlist.ts) in compact form (R-X9: memory per
 * message of a maildrop held in this process): base name -> slot in one Map (a small integer per
 * name), uid and R-S4 size per slot in typed arrays, one string per base name (the same string
 * the listings reference, message-list.ts). A slot whose record was removed (`D`) stays, empty,
 * until the next rewrite of the file starts the table afresh (a compaction runs once removed
 * records outnumber live ones, maildir-assign.ts).
 *
 * uid -> slot (to apply a `D` record): slots are filled in file order, and poplar gives uids in
 * increasing order as it appends, so the uids of the slots ascend and a binary search finds one;
 * a file whose uids do not ascend (edited by hand) gets a Map instead, from then on.
 */
import type { UidEntry } from './maildir-uidlist.js';
import { searchUids } from '../message-list.js';

const FIRST_CAPACITY = 64;

export class UidRecords {
  private readonly slots = new Map<string, number>();
  private uids = new Float64Array(FIRST_CAPACITY);
  private sizes = new Float64Array(FIRST_CAPACITY);
  /** Base name per slot; '' for a removed record. */
  private names: string[] = [];
  /** uid -> slot, once the uids of the slots stopped ascending (see above). */
  private byUid: Map<number, number> | undefined;

  /** Live records. */
  get size(): number {
    return this.slots.size;
  }

  has(name: string): boolean {
    return this.slots.has(name);
  }

  /** The slot of `name`'s record, or -1. */
  slot(name: string): number {
    return this.slots.get(name) ?? -1;
  }

  /** The base name of a live slot: the one string the table keeps for it. */
  nameAt(slot: number): string {
    return this.names[slot]!;
  }

  uidAt(slot: number): number {
    return this.uids[slot]!;
  }

  sizeAt(slot: number): number {
    return this.sizes[slot]!;
  }

  /** The record of `name` as an object (made on each call), undefined without one. */
  get(name: string): UidEntry | undefined {
    const slot = this.slots.get(name);
    return slot === undefined ? undefined : { uid: this.uids[slot]!, size: this.sizes[slot]! };
  }

  /** Adds a record unless `name` has one (the first record for a name wins); false if it had. */
  add(name: string, uid: number, size: number): boolean {
    if (this.slots.has(name)) return false;
    const slot = this.names.length;
    if (slot === this.uids.length) this.grow();
    if (this.byUid === undefined && slot > 0 && uid <= this.uids[slot - 1]!) {
      this.byUid = new Map();
      for (let s = 0; s < slot; s++) this.byUid.set(this.uids[s]!, s);
    }
    this.byUid?.set(uid, slot);
    this.uids[slot] = uid;
    this.sizes[slot] = size;
    this.names.push(name);
    this.slots.set(name, slot);
    return true;
  }

  /** Removes the live record with `uid`, if any. */
  removeUid(uid: number): void {
    const slot = this.byUid === undefined ? this.search(uid) : (this.byUid.get(uid) ?? -1);
    if (slot < 0) return;
    const name = this.names[slot]!;
    if (name === '' || this.slots.get(name) !== slot) return;
    this.slots.delete(name);
    this.names[slot] = '';
    this.byUid?.delete(uid);
  }

  clear(): void {
    this.slots.clear();
    this.uids = new Float64Array(FIRST_CAPACITY);
    this.sizes = new Float64Array(FIRST_CAPACITY);
    this.names = [];
    this.byUid = undefined;
  }

  /** Live records, in slot (file) order. */
  *[Symbol.iterator](): IterableIterator<[string, UidEntry]> {
    for (let s = 0; s < this.names.length; s++) {
      const name = this.names[s]!;
      if (name !== '' && this.slots.get(name) === s) yield [name, { uid: this.uids[s]!, size: this.sizes[s]! }];
    }
  }

  /** The slot holding `uid` (ascending uids), or -1. */
  private search(uid: number): number {
    return searchUids(this.uids, this.names.length, uid);
  }

  /** 1.5 times the room: a big maildrop's table is mostly read, rarely appended to. */
  private grow(): void {
    const cap = Math.ceil(this.uids.length * 1.5);
    const uids = new Float64Array(cap);
    uids.set(this.uids);
    const sizes = new Float64Array(cap);
    sizes.set(this.sizes);
    this.uids = uids;
    this.sizes = sizes;
  }
}

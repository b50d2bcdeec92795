/**
 * Reusable buffers for the RETR path. A RETR of 1 GB used to allocate ~2 GB of fresh 64–512 KiB
 * buffers (one per file read, one per transformed chunk); V8 counts them as external memory and
 * answers with full mark-compact collections, a quarter of RETR's CPU. Instead, a file is read
 * into a pooled buffer (storage/maildir/maildir-snapshot.ts), transformed into a pooled buffer
 * (./body-transform.ts), and each goes back to its pool once the socket has taken it
 * (session/output.ts calls `releaseChunk` from the write callback).
 *
 * Safety: only a chunk handed out by `take` and not yet released is ever put back (a release of
 * anything else, or a second release, is ignored), so a consumer that keeps a chunk simply never
 * releases it and the pool allocates another. Each pool keeps at most `keep` free buffers, so what
 * it holds is bounded (a few MiB per process); buffers in use are bounded per session by the
 * stream's backpressure.
 */

import { RETR_READ_CHUNK } from './limits.js';

/** Every pooled buffer in use, by its memory: the pool it goes back to. */
const inUse = new WeakMap<ArrayBufferLike, { pool: ChunkPool; buffer: Buffer }>();

export class ChunkPool {
  private readonly free: Buffer[] = [];

  constructor(
    /** Size of every buffer of this pool. */
    readonly size: number,
    /** Free buffers kept at most. */
    private readonly keep: number,
  ) {}

  /** A buffer of `size` octets, with its own memory (never a slice of Node's shared pool). */
  take(): Buffer {
    const buffer = this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
    inUse.set(buffer.buffer, { pool: this, buffer });
    return buffer;
  }

  /** Number of free buffers held (for tests). */
  get held(): number {
    return this.free.length;
  }

  /** @internal */
  put(buffer: Buffer): void {
    if (this.free.length < this.keep) this.free.push(buffer);
  }
}

/**
 * Gives the buffer under `chunk` (a pooled buffer or a view of one) back to its pool. A chunk that
 * is not from a pool, or whose buffer was already given back, is ignored. The caller must not
 * touch `chunk`, or any other view of its buffer, afterwards.
 */
export function releaseChunk(chunk: Uint8Array): void {
  const owner = inUse.get(chunk.buffer);
  if (owner === undefined) return;
  inUse.delete(chunk.buffer);
  owner.pool.put(owner.buffer);
}

/** Buffers RETR/TOP read message files into (storage/maildir/maildir-snapshot.ts). */
export const readPool = new ChunkPool(RETR_READ_CHUNK, 16);

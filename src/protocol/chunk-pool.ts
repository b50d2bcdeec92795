/**
 * Reusable buffers for the RETR path. A RETR of 1 GB would otherwise allocate twice its size in
 * fresh 256–512 KiB buffers (one per file read, one per transformed chunk); V8 counts them as
 * external memory and answers with full mark-compact collections (docs/benchmarks.md, "Buffer
 * pools"). Instead a file is read into a pooled buffer, transformed into a pooled buffer, and each
 * goes back to its pool once the socket has taken it.
 *
 * This module holds no pool: a pool is an object its owner creates and passes on. The pool of
 * file reads belongs to the Maildir reader (storage/maildir/maildir-snapshot.ts), the pool of
 * transformed chunks to the session's writer (session/output.ts), which hands it to the encoder.
 * Which pool a buffer belongs to is recorded on the buffer's memory, so a chunk finds its way
 * back from any view of it with no registry.
 *
 * The ownership rule (docs/architecture.md, "Buffer ownership"): a pooled chunk has one holder at
 * a time. Handing a chunk to the next stage (returning it from `MessageSource.next`, passing it to
 * `BodyEncoder.chunk`, returning it from there, writing it) hands it over; the holder that uses it
 * last calls `releaseChunk` once — the encoder for an input it copied, the writer's write callback
 * for what it wrote — and nothing touches it afterwards. `PooledChunk` marks, in the types, a
 * chunk only a pool makes; `releaseChunk` ignores anything that is not a pooled chunk still out
 * (a plain buffer, a second release), so a holder that keeps a chunk instead of handing it on
 * simply never releases it and the pool allocates another. Each pool keeps at most `keep` free
 * buffers, so what it holds is bounded; buffers in use are bounded per session by backpressure.
 */

declare const pooled: unique symbol;
/** A buffer from `ChunkPool.take` (or a `pooledView` of one), not yet given back. */
export type PooledChunk = Buffer & { readonly [pooled]: true };

/** Where the memory of a pooled buffer records its pool and whether it is out. */
const SLOT = Symbol('poplar.chunkPool');
interface Slot {
  readonly pool: ChunkPool;
  readonly buffer: Buffer;
  out: boolean;
}
type Tagged = ArrayBufferLike & { [SLOT]?: Slot };

export class ChunkPool {
  private readonly free: Buffer[] = [];

  constructor(
    /** Size of every buffer of this pool. */
    readonly size: number,
    /** Free buffers kept at most. */
    private readonly keep: number,
  ) {}

  /** A buffer of `size` octets, with its own memory (never a slice of Node's shared pool). */
  take(): PooledChunk {
    let buffer = this.free.pop();
    if (buffer === undefined) {
      buffer = Buffer.allocUnsafeSlow(this.size);
      (buffer.buffer as Tagged)[SLOT] = { pool: this, buffer, out: true };
    } else {
      (buffer.buffer as Tagged)[SLOT]!.out = true;
    }
    return buffer as PooledChunk;
  }

  /** Number of free buffers held (for tests). */
  get held(): number {
    return this.free.length;
  }

  /** @internal releaseChunk's half: keeps `buffer` for the next take, up to `keep`. */
  put(buffer: Buffer): void {
    if (this.free.length < this.keep) this.free.push(buffer);
  }
}

/** A view of part of a pooled chunk; giving back the view gives back the chunk. */
export function pooledView(chunk: PooledChunk, start: number, end: number): PooledChunk {
  return chunk.subarray(start, end) as PooledChunk;
}

/**
 * Gives the buffer under `chunk` (a pooled chunk or a view of one) back to its pool. Anything else
 * — a buffer no pool made, or one already given back — is ignored. The caller must not touch
 * `chunk`, or any other view of its memory, afterwards.
 */
export function releaseChunk(chunk: Uint8Array): void {
  const slot = (chunk.buffer as Tagged)[SLOT];
  if (slot === undefined || !slot.out) return;
  slot.out = false;
  slot.pool.put(slot.buffer);
}

/**
 * The output side of a session: replies queued per batch of pipelined commands and written in
 * one go, and streamed bodies that wait for 'drain' (backpressure), so a client that never reads
 * costs at most the socket's buffer. A body is written corked and uncorked every STREAM_COALESCE
 * octets and at its end, so its status line, chunks and terminator leave in few `writev`s. The
 * socket can change under it (STLS, never during a body), so it is looked up on every use.
 */
import type { Socket } from 'node:net';
import { setImmediate } from 'node:timers/promises';
import { Pop3Error } from '../errors.js';
import { TRANSFORM_OUT_CHUNK } from '../protocol/body-transform.js';
import { ChunkPool, releaseChunk } from '../protocol/chunk-pool.js';
import { STREAM_COALESCE } from '../protocol/limits.js';
import type { BodyEncoder } from '../protocol/dot-stuffing.js';
import type { MessageSource } from '../storage/mail-store.js';

/**
 * The buffers RETR's transform writes changed chunks into (protocol/chunk-pool.ts), shared by
 * every session of the process: the writer gives each back from its write callback, so it owns
 * them. At most 16 are kept free.
 */
const transformPool = new ChunkPool(TRANSFORM_OUT_CHUNK, 16);

export class SessionOutput {
  private queued: Buffer[] = [];
  private queuedBytes = 0;

  constructor(
    private readonly socket: () => Socket,
    /** Called on every 'drain': progress counts as activity for the idle timer. */
    private readonly onProgress: () => void,
    /** Counts octets written, for the session summary. */
    private readonly count: (octets: number) => void,
  ) {}

  /** Octets queued and not yet written. */
  get pending(): number {
    return this.queuedBytes;
  }

  push(data: Buffer): void {
    this.queued.push(data);
    this.queuedBytes += data.length;
  }

  /** Drops what is queued (an idle timeout replaces it with its notice). */
  clear(): void {
    this.queued = [];
    this.queuedBytes = 0;
  }

  /** Removes and returns what is queued, as one buffer (STLS writes it before the handshake). */
  take(): Buffer {
    const data = this.queued.length === 1 ? this.queued[0]! : Buffer.concat(this.queued);
    this.clear();
    return data;
  }

  writable(): boolean {
    const s = this.socket();
    return !s.destroyed && s.writable;
  }

  flush(): void {
    if (this.queued.length === 0) return;
    const data = this.take();
    if (!this.writable()) return;
    this.count(data.length);
    this.socket().write(data);
  }

  /** Writes `body` after what is queued, waiting for the socket whenever it is full. */
  async stream(body: AsyncIterable<Buffer>): Promise<number> {
    const socket = this.socket();
    socket.cork();
    let sent = 0;
    try {
      this.flush();
      for await (const chunk of body) {
        sent += chunk.length;
        if (this.writeChunk(socket, chunk)) await this.refill(socket);
      }
    } finally {
      socket.uncork(); // a no-op when not corked (drained() rejected between uncork and cork)
    }
    return sent;
  }

  /**
   * Writes a message (RETR, TOP) after what is queued: each chunk of `source` through `encoder`,
   * then the encoder's end, waiting for the socket whenever it is full. One plain loop: a chunk
   * the source reads synchronously (Maildir on the event loop) costs no promise and no stream.
   * `meter` is told every octet written (R-X10). The source is closed however this ends.
   */
  async message(source: MessageSource, encoder: BodyEncoder, meter?: (octets: number) => void): Promise<number> {
    const socket = this.socket();
    socket.cork();
    let sent = 0;
    try {
      this.flush();
      for (;;) {
        let chunk = source.next();
        if (chunk instanceof Promise) chunk = await chunk;
        if (chunk === undefined) break;
        const out = encoder.chunk(chunk, transformPool);
        if (out !== undefined) {
          sent += out.length;
          meter?.(out.length);
          if (this.writeChunk(socket, out)) await this.refill(socket);
        }
        if (encoder.done) break;
      }
      const end = encoder.end();
      sent += end.length;
      meter?.(end.length);
      this.writeChunk(socket, end);
    } finally {
      source.close();
      socket.uncork(); // a no-op when not corked (drained() rejected between uncork and cork)
    }
    return sent;
  }

  /**
   * Writes one chunk of a body while corked; uncorked every STREAM_COALESCE octets. True when it
   * was: the caller then waits with refill() before the next chunk. The chunk is handed over: once
   * the socket has taken it, the write callback gives a pooled chunk back (protocol/chunk-pool.ts),
   * the one place a written chunk is released.
   */
  private writeChunk(socket: Socket, chunk: Buffer): boolean {
    if (!this.writable()) throw new Pop3Error('INTERNAL', 'Connection closed during transfer', { disconnect: true });
    this.count(chunk.length);
    socket.write(chunk, () => releaseChunk(chunk));
    if (socket.writableLength < STREAM_COALESCE) return false;
    socket.uncork();
    return true;
  }

  /**
   * After an uncork: waits for 'drain' while the kernel holds back some of it, else for one turn
   * of the event loop (setImmediate). When the kernel took everything at once (loopback, a fast
   * LAN), 'drain' and the write callbacks that give chunks back to their pools come on the next
   * tick, with no turn of the event loop between: a message's reads, transforms and writes would
   * run back to back and every other session would wait for the whole message. Then corks again
   * for the next chunks.
   */
  private async refill(socket: Socket): Promise<void> {
    if (socket.writableLength > 0 && socket.writableNeedDrain) await this.drained();
    else await setImmediate();
    socket.cork();
  }

  /** Resolves on 'drain'; rejects if the socket closes first. */
  drained(): Promise<void> {
    const socket = this.socket();
    return new Promise<void>((resolve, reject) => {
      const onDrain = (): void => {
        cleanup();
        this.onProgress();
        resolve();
      };
      const onClose = (): void => {
        cleanup();
        reject(new Pop3Error('INTERNAL', 'Connection closed during transfer', { disconnect: true }));
      };
      const cleanup = (): void => {
        socket.off('drain', onDrain);
        socket.off('close', onClose);
      };
      if (socket.destroyed) return onClose();
      socket.on('drain', onDrain);
      socket.on('close', onClose);
    });
  }
}

/**
 * SessionOutput.message (session/output.ts), the RETR/TOP send loop, against a socket that takes
 * every write at once (as loopback or a fast LAN does: nothing ever waits for 'drain'). R-X9:
 * memory per session stays bounded whatever the message size, and one session's message does not
 * hold the others: the loop gives the event loop a turn every STREAM_COALESCE octets, so the write
 * callbacks run and hand the chunks back to their pool before the next reads.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Writable } from 'node:stream';
import type { Socket } from 'node:net';
import { bodyEncoder } from '../../src/protocol/dot-stuffing.js';
import { ChunkPool } from '../../src/protocol/chunk-pool.js';
import { RETR_READ_CHUNK } from '../../src/protocol/limits.js';
import { SessionOutput } from '../../src/session/output.js';
import type { MessageSource } from '../../src/storage/mail-store.js';

/** A Writable that takes every write synchronously, standing in for a socket. */
function fastSocket(): { socket: Socket; received: () => number; memories: Set<ArrayBufferLike> } {
  let received = 0;
  const memories = new Set<ArrayBufferLike>();
  const w = new Writable({
    writev(chunks, done) {
      for (const c of chunks) {
        received += (c.chunk as Buffer).length;
        memories.add((c.chunk as Buffer).buffer);
      }
      done();
    },
    write(chunk: Buffer, _enc, done) {
      received += chunk.length;
      memories.add(chunk.buffer);
      done();
    },
  });
  return { socket: w as unknown as Socket, received: () => received, memories };
}

/** `chunks` pooled chunks of CRLF text needing no change (RETR sends them as they are). */
function pooledSource(chunks: number, eol = '\r\n'): { source: MessageSource; buffers: Set<ArrayBufferLike> } {
  const buffers = new Set<ArrayBufferLike>();
  const readPool = new ChunkPool(RETR_READ_CHUNK, 16);
  let left = chunks;
  const line = Buffer.from(`0123456789abcdef0123456789abcdef${eol}`);
  return {
    buffers,
    source: {
      next: () => {
        if (left-- <= 0) return undefined;
        const buf = readPool.take();
        for (let at = 0; at + line.length <= buf.length; at += line.length) line.copy(buf, at);
        const n = buf.length - (buf.length % line.length);
        buffers.add(buf.buffer);
        return buf.subarray(0, n);
      },
      close: () => undefined,
    },
  };
}

describe('SessionOutput.message (the RETR send loop)', () => {
  it('R-X9 a message to a socket that never pushes back still yields to the event loop and reuses its pooled buffers', async () => {
    const chunks = 40; // 10 MiB
    const { socket, received } = fastSocket();
    const out = new SessionOutput(() => socket, () => undefined, () => undefined);
    const { source, buffers } = pooledSource(chunks);
    let turns = 0;
    let running = true;
    const tick = (): void => {
      if (!running) return;
      turns++;
      setImmediate(tick);
    };
    setImmediate(tick);
    const sent = await out.message(source, bodyEncoder());
    running = false;
    assert.ok(sent > (chunks - 1) * (RETR_READ_CHUNK - 64), 'the whole message was sent');
    await new Promise((r) => setImmediate(r));
    assert.equal(received(), sent);
    assert.ok(turns >= chunks / 2, `other work ran while the message was sent (${turns} event-loop turns)`);
    assert.ok(buffers.size <= 4, `chunks given back and reused as the socket took them (${buffers.size} buffers for ${chunks} chunks)`);
  });

  it('R-X9 R-S19 a message whose every chunk changes (bare LF) is written from the writer\'s pool, reused as the socket takes it', async () => {
    const chunks = 40;
    const { socket, memories } = fastSocket();
    const out = new SessionOutput(() => socket, () => undefined, () => undefined);
    const { source, buffers } = pooledSource(chunks, '\n');
    const sent = await out.message(source, bodyEncoder());
    assert.ok(sent > chunks * RETR_READ_CHUNK, 'every bare LF sent as CRLF');
    assert.ok(buffers.size <= 4, `read buffers given back after the copy (${buffers.size} for ${chunks} chunks)`);
    assert.ok(memories.size <= 5, `transformed chunks written from a few pooled buffers (${memories.size} for ${chunks} chunks)`);
  });
});

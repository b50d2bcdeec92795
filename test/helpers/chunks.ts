/**
 * Feeding a stored message to the body transforms in pieces, as the Maildir reader and the session
 * do: the unit tests of src/protocol (line-rule, body-transform, fuzz) share these, so every fast
 * path is driven the same way.
 */
import { AFTER_CR, LINE_START, MID_LINE, type LineState } from '../../src/protocol/body-transform.js';

/** `message` cut at the given offsets (each taken modulo its length + 1, duplicates dropped). */
export function cutAt(message: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (message.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let last = 0;
  for (const p of [...points, message.length]) {
    chunks.push(message.subarray(last, p));
    last = p;
  }
  return chunks;
}

export type ChunkTransform = (b: Buffer, s: LineState) => { out: Buffer; state: LineState };

/**
 * The wire bytes of a RETR reply body: `t` over the chunks as the encoder drives it (an LF right
 * after a chunk that ended in CR is dropped first, the transforms' contract), then the end.
 */
export function viaTransform(chunks: readonly Buffer[], t: ChunkTransform): Buffer {
  let state: LineState = LINE_START;
  const out: Buffer[] = [];
  for (const c of chunks) {
    let input = c;
    if (state === AFTER_CR && input.length > 0 && input[0] === 0x0a) {
      input = input.subarray(1);
      state = LINE_START;
    }
    const r = t(input, state);
    state = r.state;
    out.push(Buffer.from(r.out));
  }
  out.push(Buffer.from(state === MID_LINE ? '\r\n.\r\n' : '.\r\n'));
  return Buffer.concat(out);
}

/**
 * STAT, LIST and UIDL (RFC 1939 §5, §7; R-S4 exact sizes with nothing after them; R-S12 decimal
 * uids, or R-X11 a UIDL carried over by import), read from the session's compact list (no object
 * per message). Whole listings are streamed in chunks, so a huge
 * maildrop costs no huge buffer: each chunk is one buffer the lines are written into directly
 * (decimal digits by hand, a carried-over UIDL as latin1 text), with no string or object per line.
 */
import { LISTING_CHUNK } from '../protocol/limits.js';
import { ok } from '../protocol/response.js';
import type { Maildrop } from '../session/maildrop.js';
import { transaction } from './types.js';

/** Room for a message number, a space, a decimal value and CRLF (numbers below 2^53). */
const NUMBER_LINE = 2 * 16 + 3;

export const stat = transaction<'STAT'>((ctx, state) => {
  const { count, size } = state.maildrop.stat();
  ctx.reply(ok(`${count} ${size}`));
});

export const list = transaction<'LIST'>(async (ctx, state, cmd) => {
  const { maildrop } = state;
  if (cmd.msg !== undefined) {
    ctx.reply(ok(`${cmd.msg} ${maildrop.sizeAt(maildrop.check(cmd.msg))}`));
    return;
  }
  const { count, size } = maildrop.stat();
  await ctx.sendBody(ok(`${count} messages (${size} octets)`), listing(maildrop, (i) => maildrop.sizeAt(i)));
});

export const uidl = transaction<'UIDL'>(async (ctx, state, cmd) => {
  const { maildrop } = state;
  if (cmd.msg !== undefined) {
    ctx.reply(ok(`${cmd.msg} ${maildrop.uidlAt(maildrop.check(cmd.msg))}`));
    return;
  }
  await ctx.sendBody(ok('Unique-ID listing follows'), listing(maildrop, (i) => maildrop.uidlAt(i)));
});

/** Writes the decimal digits of `v` (a non-negative integer below 2^53) at `o`; returns the end. */
export function writeDecimal(buf: Buffer, o: number, v: number): number {
  let digits = 1;
  for (let t = v; t >= 10; t = Math.floor(t / 10)) digits++;
  let p = o + digits;
  while (v >= 10) {
    const q = Math.floor(v / 10);
    buf[--p] = 48 + (v - q * 10);
    v = q;
  }
  buf[--p] = 48 + v;
  return o + digits;
}

/** "n value" lines for every live message, then the terminator, in chunks of ~LISTING_CHUNK. */
async function* listing(maildrop: Maildrop, value: (index: number) => number | string): AsyncGenerator<Buffer> {
  let buf = Buffer.allocUnsafe(LISTING_CHUNK);
  let o = 0;
  for (let msg = 1; msg <= maildrop.count; msg++) {
    if (maildrop.isDeleted(msg)) continue;
    const v = value(msg - 1);
    const need = typeof v === 'number' ? NUMBER_LINE : NUMBER_LINE + v.length;
    if (o + need > buf.length) {
      if (o > 0) yield buf.subarray(0, o);
      buf = Buffer.allocUnsafe(Math.max(LISTING_CHUNK, need));
      o = 0;
    }
    o = writeDecimal(buf, o, msg);
    buf[o++] = 0x20;
    o = typeof v === 'number' ? writeDecimal(buf, o, v) : o + buf.write(v, o, 'latin1');
    buf[o++] = 0x0d;
    buf[o++] = 0x0a;
  }
  if (o + 3 > buf.length) {
    yield buf.subarray(0, o);
    buf = Buffer.allocUnsafe(3);
    o = 0;
  }
  buf[o++] = 0x2e;
  buf[o++] = 0x0d;
  buf[o++] = 0x0a;
  yield buf.subarray(0, o);
}

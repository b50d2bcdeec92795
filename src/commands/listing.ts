/**
 * STAT, LIST and UIDL (RFC 1939 §5, §7; R-S4 exact sizes with nothing after them; R-S12 decimal
 * uids, or R-X11 a UIDL carried over by import). Whole listings are streamed in chunks, so a huge
 * maildrop costs no huge buffer.
 */
import { ok } from '../protocol/response.js';
import type { Maildrop } from '../session/maildrop.js';
import type { MessageInfo } from '../storage/mail-store.js';
import { transaction } from './types.js';

const LISTING_CHUNK = 16 * 1024;

export const stat = transaction<'STAT'>((ctx, state) => {
  const { count, size } = state.maildrop.stat();
  ctx.reply(ok(`${count} ${size}`));
});

export const list = transaction<'LIST'>(async (ctx, state, cmd) => {
  const { maildrop } = state;
  if (cmd.msg !== undefined) {
    ctx.reply(ok(`${cmd.msg} ${maildrop.get(cmd.msg).size}`));
    return;
  }
  const { count, size } = maildrop.stat();
  await ctx.sendBody(ok(`${count} messages (${size} octets)`), listing(maildrop, (m) => String(m.size)));
});

export const uidl = transaction<'UIDL'>(async (ctx, state, cmd) => {
  const { maildrop } = state;
  if (cmd.msg !== undefined) {
    ctx.reply(ok(`${cmd.msg} ${uidlOf(maildrop.get(cmd.msg))}`));
    return;
  }
  await ctx.sendBody(ok('Unique-ID listing follows'), listing(maildrop, uidlOf));
});

/** R-S12 the decimal uid, or R-X11 the UIDL a migrated message carried over. */
function uidlOf(m: MessageInfo): string {
  return m.uidl ?? String(m.uid);
}

/** "n value" lines for every live message, then the terminator, in chunks of ~16 KiB. */
async function* listing(maildrop: Maildrop, value: (m: MessageInfo) => string): AsyncGenerator<Buffer> {
  let text = '';
  for (const { msg, info } of maildrop.live()) {
    text += `${msg} ${value(info)}\r\n`;
    if (text.length >= LISTING_CHUNK) {
      yield Buffer.from(text, 'latin1');
      text = '';
    }
  }
  yield Buffer.from(`${text}.\r\n`, 'latin1');
}

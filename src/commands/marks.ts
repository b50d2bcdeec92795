/**
 * DELE, RSET, NOOP and LAST (RFC 1939 §5, R-K4, R-K5; RFC 1460 LAST, R-K7). DELE only marks;
 * the store removes nothing before UPDATE.
 */
import { ok } from '../protocol/response.js';
import { transaction } from './types.js';

export const dele = transaction<'DELE'>((ctx, state, cmd) => {
  state.maildrop.dele(cmd.msg);
  ctx.stats.dele++;
  ctx.reply(ok(`Message ${cmd.msg} deleted`));
});

export const rset = transaction<'RSET'>((ctx, state) => {
  state.maildrop.rset();
  const { count, size } = state.maildrop.stat();
  ctx.reply(ok(`Maildrop has ${count} message${count === 1 ? '' : 's'} (${size} octets)`));
});

export const noop = transaction<'NOOP'>((ctx) => {
  ctx.reply(ok());
});

export const last = transaction<'LAST'>(
  (ctx, state) => {
    ctx.reply(ok(String(state.maildrop.last)));
  },
  (settings) => settings.lastCommand,
);

/**
 * RETR and TOP (RFC 1939 §5, §7; R-K6): the body is streamed from the store through the one
 * CRLF + dot-stuffing transform, honouring the socket's backpressure. A message expunged by
 * another session since login answers -ERR (R-S3). R-X10: the daily download cap is checked
 * before a message starts and counts the octets sent (policy/poll-limits.ts).
 */
import { toPop3Error } from '../errors.js';
import { stuffBody } from '../protocol/dot-stuffing.js';
import { ok } from '../protocol/response.js';
import type { Readable } from 'node:stream';
import type { CommandContext } from '../session/context.js';
import type { TransactionState } from '../session/state.js';
import { transaction } from './types.js';

async function openBody(ctx: CommandContext, state: TransactionState, msg: number): Promise<Readable> {
  const info = state.maildrop.get(msg);
  try {
    return await state.maildrop.snapshot.read(info.id);
  } catch (e) {
    throw toPop3Error(e);
  }
}

type Meter = (body: AsyncIterable<Buffer>) => AsyncIterable<Buffer>;

/** R-X10: refuses when the maildrop's download cap for today is spent (after checking `msg`). */
async function downloadMeter(ctx: CommandContext, state: TransactionState, msg: number): Promise<Meter> {
  state.maildrop.get(msg);
  return (await ctx.services.pollLimits?.startDownload(state.maildrop.mailbox)) ?? ((body) => body);
}

export const retr = transaction<'RETR'>(async (ctx, state, cmd) => {
  const size = state.maildrop.get(cmd.msg).size;
  const meter = await downloadMeter(ctx, state, cmd.msg);
  const source = await openBody(ctx, state, cmd.msg);
  const sent = await ctx.sendBody(ok(`${size} octets`), meter(stuffBody(source, { workarounds: ctx.settings.workarounds })));
  state.maildrop.markRetrieved(cmd.msg);
  ctx.stats.retr++;
  ctx.stats.retrBytes += sent;
});

export const top = transaction<'TOP'>(async (ctx, state, cmd) => {
  const meter = await downloadMeter(ctx, state, cmd.msg);
  const source = await openBody(ctx, state, cmd.msg);
  const sent = await ctx.sendBody(ok('Top of message follows'), meter(stuffBody(source, { topLines: cmd.lines, workarounds: ctx.settings.workarounds })));
  ctx.stats.top++;
  ctx.stats.topBytes += sent;
});

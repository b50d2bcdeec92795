/**
 * RETR and TOP (RFC 1939 §5, §7; R-K6): the body is streamed from the store through the one
 * CRLF + dot-stuffing transform, honouring the socket's backpressure. A message expunged by
 * another session since login answers -ERR (R-S3). R-X10: the daily download cap is checked
 * before a message starts and counts the octets sent (policy/poll-limits.ts).
 */
import { toPop3Error } from '../errors.js';
import { bodyEncoder } from '../protocol/dot-stuffing.js';
import { ok } from '../protocol/response.js';
import type { DownloadMeter } from '../policy/poll-limits.js';
import { openMessage, type MessageSource } from '../storage/mail-store.js';
import type { CommandContext } from '../session/context.js';
import type { TransactionState } from '../session/state.js';
import { transaction } from './types.js';

async function openBody(state: TransactionState, msg: number): Promise<MessageSource> {
  const at = state.maildrop.check(msg);
  try {
    return await openMessage(state.maildrop.snapshot, state.maildrop.snapshot.list.id(at), at);
  } catch (e) {
    throw toPop3Error(e);
  }
}

/** R-X10: refuses when the maildrop's download cap for today is spent (after checking `msg`). */
async function downloadMeter(ctx: CommandContext, state: TransactionState, msg: number): Promise<DownloadMeter | undefined> {
  state.maildrop.check(msg);
  return ctx.services.pollLimits?.startDownload(state.maildrop.mailbox);
}

/** Sends the reply, counting it on the meter (written back however the reply ends). */
async function send(ctx: CommandContext, status: Buffer, source: MessageSource, topLines: number | undefined, meter: DownloadMeter | undefined): Promise<number> {
  const encoder = bodyEncoder({ topLines, workarounds: ctx.settings.workarounds });
  try {
    return await ctx.sendMessage(status, source, encoder, meter?.add);
  } finally {
    await meter?.finish();
  }
}

export const retr = transaction<'RETR'>(async (ctx, state, cmd) => {
  const size = state.maildrop.get(cmd.msg).size;
  const meter = await downloadMeter(ctx, state, cmd.msg);
  const sent = await send(ctx, ok(`${size} octets`), await openBody(state, cmd.msg), undefined, meter);
  state.maildrop.markRetrieved(cmd.msg);
  ctx.stats.retr++;
  ctx.stats.retrBytes += sent;
});

export const top = transaction<'TOP'>(async (ctx, state, cmd) => {
  const meter = await downloadMeter(ctx, state, cmd.msg);
  const sent = await send(ctx, ok('Top of message follows'), await openBody(state, cmd.msg), cmd.lines, meter);
  ctx.stats.top++;
  ctx.stats.topBytes += sent;
});

/**
 * QUIT (RFC 1939 §6). In AUTHORIZATION it just signs off. In TRANSACTION the session enters UPDATE
 * and the store removes exactly the messages marked deleted (R-K4, R-S11) — or, with
 * `pop3.delete_mode = "hide"` (R-X12), hides them from POP3 for good and keeps the files; if that
 * fails the reply is the RFC's "-ERR some deleted messages not removed" and nothing else is lost.
 */
import { Pop3Error } from '../errors.js';
import { ok } from '../protocol/response.js';
import { anyState } from './types.js';

export const quit = anyState<'QUIT'>(async (ctx, state) => {
  if (state.phase !== 'transaction') {
    ctx.reply(ok(`${ctx.settings.hostname} POP3 server signing off`));
    ctx.end('quit');
    return;
  }
  const { maildrop } = state;
  ctx.state = { phase: 'update' };
  const changes = maildrop.changes(ctx.settings.deleteMode);
  try {
    await maildrop.snapshot.commit(changes);
  } catch (e) {
    ctx.log.error({ err: e, mailbox: maildrop.mailbox }, 'update failed');
    throw new Pop3Error('INTERNAL', 'Some deleted messages not removed', { responseCode: 'SYS/TEMP', disconnect: true, cause: e });
  } finally {
    await maildrop.snapshot.release();
  }
  const left = maildrop.count - maildrop.markedCount;
  ctx.reply(ok(`${ctx.settings.hostname} POP3 server signing off (${left} message${left === 1 ? '' : 's'} left)`));
  ctx.end('quit');
});

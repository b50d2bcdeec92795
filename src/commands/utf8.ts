/**
 * UTF8 (RFC 6856 §2, R-X5): the client declares it handles UTF-8. poplar always accepts UTF-8 user
 * names and passwords and never downgrades messages, so the command only acknowledges. Valid in
 * the AUTHORIZATION state only (RFC 6856 §2).
 */
import { ok } from '../protocol/response.js';
import { authorization } from './types.js';

export const utf8 = authorization<'UTF8'>((ctx) => {
  ctx.reply(ok('UTF8 enabled'));
});

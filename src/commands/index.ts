/**
 * The command table: every POP3 keyword poplar answers, and its entry (DESIGN.md habit 2).
 * server.ts hands it to every Session (session/ does not import commands/).
 */
import type { CommandTable } from '../session/context.js';
import { apop } from './apop.js';
import { auth } from './auth.js';
import { capa } from './capa.js';
import { list, stat, uidl } from './listing.js';
import { dele, last, noop, rset } from './marks.js';
import { pass } from './pass.js';
import { quit } from './quit.js';
import { retr, top } from './retrieve.js';
import { stls } from './stls.js';
import { user } from './user.js';
import { utf8 } from './utf8.js';

export const COMMANDS: CommandTable = {
  USER: user,
  PASS: pass,
  APOP: apop,
  AUTH: auth,
  STLS: stls,
  UTF8: utf8,
  CAPA: capa,
  QUIT: quit,
  STAT: stat,
  LIST: list,
  RETR: retr,
  DELE: dele,
  NOOP: noop,
  RSET: rset,
  TOP: top,
  UIDL: uidl,
  LAST: last,
};

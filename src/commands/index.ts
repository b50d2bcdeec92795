/** The command table: every POP3 keyword poplar answers, and its entry (DESIGN.md habit 2). */
import type { CommandName } from '../protocol/command.js';
import { apop } from './apop.js';
import { auth } from './auth.js';
import { capa } from './capa.js';
import { list, stat, uidl } from './listing.js';
import { dele, last, noop, rset } from './marks.js';
import { pass } from './pass.js';
import { quit } from './quit.js';
import { retr, top } from './retrieve.js';
import { stls } from './stls.js';
import type { CommandSpec } from './types.js';
import { user } from './user.js';
import { utf8 } from './utf8.js';

export const COMMANDS: Readonly<Record<CommandName, CommandSpec>> = {
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

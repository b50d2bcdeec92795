/**
 * What the optional per-session protocol log (R-X13, `log.protocol`) shows of a command: the
 * keyword and its arguments, with every secret masked here, in one place. Lines that did not
 * parse are never shown (a mistyped `PASS` line would carry a password).
 */
import type { Command } from '../protocol/command.js';

const MASK = '***';

export function describeCommand(c: Command): string {
  switch (c.name) {
    case 'PASS':
      return `PASS ${MASK}`;
    case 'APOP':
      return `APOP ${c.user} ${MASK}`;
    case 'USER':
      return `USER ${c.user}`;
    case 'LIST':
    case 'UIDL':
      return c.msg === undefined ? c.name : `${c.name} ${c.msg}`;
    case 'RETR':
    case 'DELE':
      return `${c.name} ${c.msg}`;
    case 'TOP':
      return `TOP ${c.msg} ${c.lines}`;
    case 'AUTH':
      if (c.mechanism === undefined) return 'AUTH';
      return c.initialResponse === undefined ? `AUTH ${c.mechanism}` : `AUTH ${c.mechanism} ${MASK}`;
    default:
      return c.name;
  }
}

/** The first line of a reply, without its CRLF, for the protocol log (bodies are never logged). */
export function statusLine(data: Buffer): string {
  const end = data.indexOf('\r\n');
  return data.subarray(0, end === -1 ? Math.min(data.length, 512) : end).toString('utf8');
}

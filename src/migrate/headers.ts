/**
 * Reading one header field of a stored message, for import (Status, X-UIDL). The header block is
 * read by the one line-end rule (protocol/line-rule.ts: CR LF, bare LF and bare CR each end a
 * line), so it ends at the same empty line RETR and TOP serve as its end.
 */
import { storedLines } from '../protocol/line-rule.js';

/** The lines of the header block: up to the first empty line (or all of them). */
function headerLines(message: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  for (const line of storedLines(message)) {
    if (line.length === 0) break;
    lines.push(line);
  }
  return lines;
}

/** The unfolded value of the first `name:` field in the header block, if any. */
export function headerValue(message: Buffer, name: string): string | undefined {
  const lines = headerLines(message).map((l) => l.toString('latin1'));
  const prefix = `${name.toLowerCase()}:`;
  const at = lines.findIndex((l) => l.slice(0, prefix.length).toLowerCase() === prefix);
  if (at === -1) return undefined;
  let value = lines[at]!.slice(prefix.length);
  // Folded continuation lines start with a space or a tab; each fold reads as one space.
  for (let i = at + 1; i < lines.length && /^[ \t]/.test(lines[i]!); i++) value += ' ' + lines[i]!.replace(/^[ \t]+/, '');
  return value.trim();
}

/** Reading one header field of a stored message, for import (Status, X-UIDL). */

/** The unfolded value of the first `name:` field in the header block, if any. */
export function headerValue(message: Buffer, name: string): string | undefined {
  const end = headerEnd(message);
  const text = message.subarray(0, end).toString('latin1');
  const re = new RegExp(`^${name}:[ \\t]*(.*(?:\\r?\\n[ \\t].*)*)`, 'im');
  const m = re.exec(text);
  return m === null ? undefined : m[1]!.replace(/\r?\n[ \t]+/g, ' ').replace(/\r$/, '').trim();
}

/** Offset of the empty line that ends the header block (or the whole message). */
export function headerEnd(message: Buffer): number {
  const lf = message.indexOf('\n\n');
  const crlf = message.indexOf('\r\n\r\n');
  const ends = [lf, crlf].filter((i) => i >= 0);
  return ends.length === 0 ? message.length : Math.min(...ends) + 1;
}

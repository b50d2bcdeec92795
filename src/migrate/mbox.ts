/**
 * mbox reading and writing for import and export (R-X15), in the mboxrd variant: a message
 * starts at a `From ` line that opens the file or follows an empty line; body lines that would
 * read as `From ` are quoted with `>` on export, and one `>` is removed from `>…From ` lines on
 * import. Reading is streamed: one message is held in memory at a time. The file is opened with
 * O_NOFOLLOW: an mbox that is a symbolic link is refused, never followed (maildir-source.ts).
 */
import type { FileHandle } from 'node:fs/promises';
import { headerValue } from './headers.js';
import { openSourceFile } from './maildir-source.js';

export interface MboxMessage {
  readonly bytes: Buffer;
  /** From the `From ` line's date, if it parses. */
  readonly received: number | undefined;
  /** `Status:` has R (read), as mutt and Dovecot write it. */
  readonly seen: boolean;
}

const FROM = Buffer.from('From ');
const QUOTED_FROM = /^>+From /;

/** The messages of an mbox file, in order. */
export async function* readMbox(path: string): AsyncGenerator<MboxMessage> {
  let rest = Buffer.alloc(0);
  let lines: Buffer[] | undefined;
  let fromLine = '';
  let previousEmpty = true;
  const finish = (): MboxMessage | undefined => {
    if (lines === undefined) return undefined;
    if (lines.length > 0 && isEmptyLine(lines[lines.length - 1]!)) lines.pop(); // the separator
    return toMessage(fromLine, Buffer.concat(lines));
  };
  const onLine = (line: Buffer): MboxMessage | undefined => {
    let done: MboxMessage | undefined;
    if (previousEmpty && line.subarray(0, 5).equals(FROM)) {
      done = finish();
      lines = [];
      fromLine = line.toString('latin1').trim();
    } else if (lines !== undefined) {
      lines.push(QUOTED_FROM.test(line.subarray(0, 80).toString('latin1')) ? line.subarray(1) : line);
    }
    previousEmpty = isEmptyLine(line);
    return done;
  };
  const fh = await openSourceFile(path);
  for await (const chunk of fh.createReadStream()) {
    let buf = Buffer.concat([rest, chunk as Buffer]);
    let nl: number;
    while ((nl = buf.indexOf(0x0a)) >= 0) {
      const done = onLine(buf.subarray(0, nl + 1));
      buf = buf.subarray(nl + 1);
      if (done !== undefined) yield done;
    }
    rest = Buffer.from(buf);
  }
  if (rest.length > 0) {
    const done = onLine(rest);
    if (done !== undefined) yield done;
  }
  const last = finish();
  if (last !== undefined) yield last;
}

function isEmptyLine(line: Buffer): boolean {
  return line.length === 1 ? line[0] === 0x0a : line.length === 2 && line[0] === 0x0d && line[1] === 0x0a;
}

function toMessage(fromLine: string, bytes: Buffer): MboxMessage {
  // "From sender@example.org Sat Jan  3 01:05:34 1996": the date follows the address.
  const date = Date.parse(fromLine.replace(/^From\s+\S+\s+/, ''));
  const status = headerValue(bytes, 'Status') ?? '';
  return { bytes, received: Number.isNaN(date) ? undefined : date, seen: status.includes('R') };
}

/** Appends one message in mboxrd form: From line, quoted From lines, a final empty line. */
export async function writeMboxMessage(fh: FileHandle, bytes: Buffer, received: Date): Promise<void> {
  const out: Buffer[] = [Buffer.from(`From MAILER-DAEMON ${asctime(received)}\n`)];
  let start = 0;
  while (start < bytes.length) {
    const nl = bytes.indexOf(0x0a, start);
    const end = nl < 0 ? bytes.length : nl + 1;
    const line = bytes.subarray(start, end);
    if (QUOTED_FROM.test(`>${line.subarray(0, 80).toString('latin1')}`)) out.push(Buffer.from('>'));
    out.push(line);
    start = end;
  }
  if (bytes.length > 0 && bytes[bytes.length - 1] !== 0x0a) out.push(Buffer.from('\n'));
  out.push(Buffer.from('\n'));
  await fh.write(Buffer.concat(out));
}

/** The ctime(3) form mbox From lines use, in UTC: `Sat Jan  3 01:05:34 1996`. */
function asctime(d: Date): string {
  const p = d.toUTCString().split(' '); // ["Sat,", "03", "Jan", "1996", "01:05:34", "GMT"]
  return `${p[0]!.slice(0, 3)} ${p[2]} ${p[1]!.replace(/^0/, ' ')} ${p[4]} ${p[3]}`;
}

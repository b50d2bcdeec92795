/**
 * Reads a Maildir another program wrote (Dovecot, Courier, mutt, an old poplar) for import
 * (R-X15), with the UIDL each message had there (R-X11): the P field of `dovecot-uidlist`, else
 * Dovecot's default `%08Xu%08Xv` from its uid and uidvalidity, else an `X-UIDL:` header.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { dovecotDefaultUidl, parseDovecotUidlist } from './dovecot-uidlist.js';
import { headerValue } from './headers.js';

export interface SourceMessage {
  readonly path: string;
  readonly seen: boolean;
  readonly received: number;
  /** The UIDL the old server showed, if it can be known. */
  readonly uidl: string | undefined;
  /** Where the UIDL came from, for the log. */
  readonly uidlSource: 'dovecot-uidlist' | 'x-uidl' | undefined;
  /** Sort key: the old uid, if the uidlist has one. */
  readonly uid: number | undefined;
}

async function list(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => !n.startsWith('.'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Messages of `root`, oldest uid first (then arrival time, then name). */
export async function readMaildirSource(root: string): Promise<SourceMessage[]> {
  const uidlist = await readFile(join(root, 'dovecot-uidlist'), 'utf8')
    .then(parseDovecotUidlist)
    .catch(() => undefined);
  const out: SourceMessage[] = [];
  for (const sub of ['cur', 'new']) {
    for (const name of await list(join(root, sub))) {
      const path = join(root, sub, name);
      const st = await stat(path);
      if (!st.isFile()) continue;
      const colon = name.indexOf(':');
      const base = colon < 0 ? name : name.slice(0, colon);
      const flags = colon >= 0 && name.slice(colon + 1).startsWith('2,') ? name.slice(colon + 3) : '';
      const rec = uidlist?.records.get(base);
      let uidl: string | undefined;
      let uidlSource: SourceMessage['uidlSource'];
      if (rec !== undefined && uidlist !== undefined) {
        uidl = rec.pop3Uidl ?? dovecotDefaultUidl(rec.uid, uidlist.uidValidity);
        uidlSource = 'dovecot-uidlist';
      } else {
        uidl = headerValue(await readHead(path), 'X-UIDL');
        uidlSource = uidl === undefined ? undefined : 'x-uidl';
      }
      out.push({ path, seen: flags.includes('S'), received: st.mtimeMs, uidl, uidlSource, uid: rec?.uid });
    }
  }
  const inf = Number.POSITIVE_INFINITY;
  return out.sort((a, b) => (a.uid ?? inf) - (b.uid ?? inf) || a.received - b.received || (a.path < b.path ? -1 : 1));
}

/** The first 64 KiB of a file: enough for its header block. */
async function readHead(path: string): Promise<Buffer> {
  const { open } = await import('node:fs/promises');
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

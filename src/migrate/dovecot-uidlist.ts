/**
 * Dovecot's `dovecot-uidlist` (doc.dovecot.org, "Maildir format"), read on import and written on
 * export so that POP3 UIDLs survive a move between Dovecot and poplar (R-X11).
 *
 *   3 V<uidvalidity> N<next uid> G<mailbox guid>       header, version 3 (v1: `1 <uidv> <next>`)
 *   <uid> [<key><value> …] :<file name>                one per message; keys used here:
 *                                                      P = POP3 UIDL, W = CRLF ("virtual") size
 *
 * Without a P field Dovecot shows UIDL as `pop3_uidl_format`, whose default `%08Xu%08Xv` is the
 * uid and the uidvalidity as 8 hex digits each, in lower case: Dovecot's var_expand prints %X
 * with printf's `%llx` (Dovecot 2.3 shows `000000016b116420`), although its documentation says
 * upper case. test/migrate/dovecot-uidl.test.ts checks this against a real Dovecot.
 */
import { randomBytes } from 'node:crypto';

export interface UidlistRecord {
  readonly uid: number;
  /** An explicit POP3 UIDL (the P field), if the record has one. */
  readonly pop3Uidl: string | undefined;
}

export interface DovecotUidlist {
  readonly uidValidity: number;
  readonly nextUid: number;
  /** By base file name (before `:2,`). */
  readonly records: ReadonlyMap<string, UidlistRecord>;
}

export function parseDovecotUidlist(text: string): DovecotUidlist | undefined {
  const lines = text.split('\n');
  const header = lines[0]?.trim().split(/\s+/) ?? [];
  let uidValidity: number;
  let nextUid: number;
  if (header[0] === '1' && header.length >= 3) {
    uidValidity = Number(header[1]);
    nextUid = Number(header[2]);
  } else if (header[0] === '3') {
    const field = (key: string): number => Number(header.find((f) => f.startsWith(key))?.slice(1));
    uidValidity = field('V');
    nextUid = field('N');
  } else {
    return undefined;
  }
  if (!Number.isSafeInteger(uidValidity)) return undefined;
  const records = new Map<string, UidlistRecord>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(' :');
    const v1 = header[0] === '1' ? /^(\d+) (.+)$/.exec(line) : null;
    const fields = colon >= 0 ? line.slice(0, colon).split(' ') : v1 !== null ? [v1[1]!] : [];
    const file = colon >= 0 ? line.slice(colon + 2) : v1?.[2];
    const uid = Number(fields[0]);
    if (file === undefined || file === '' || !Number.isSafeInteger(uid) || uid <= 0) continue;
    const p = fields.slice(1).find((f) => f.startsWith('P'));
    records.set(file.split(':')[0]!, { uid, pop3Uidl: p === undefined || p.length < 2 ? undefined : p.slice(1) });
  }
  return { uidValidity, nextUid: Number.isSafeInteger(nextUid) ? nextUid : 0, records };
}

/** Dovecot's default `pop3_uidl_format = %08Xu%08Xv`, as its POP3 server shows it (lower-case hex). */
export function dovecotDefaultUidl(uid: number, uidValidity: number): string {
  const hex = (n: number): string => n.toString(16).padStart(8, '0');
  return `${hex(uid)}${hex(uidValidity)}`;
}

/** A version 3 file naming each exported message with its uid, UIDL (P) and CRLF size (W). */
export function formatDovecotUidlist(
  uidValidity: number,
  entries: readonly { uid: number; uidl: string; size: number; file: string }[],
): string {
  const next = entries.reduce((n, e) => Math.max(n, e.uid + 1), 1);
  const lines = [`3 V${uidValidity} N${next} G${randomBytes(16).toString('hex')}`];
  for (const e of entries) lines.push(`${e.uid} P${e.uidl} W${e.size} :${e.file}`);
  return `${lines.join('\n')}\n`;
}

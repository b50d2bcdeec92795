/**
 * Maildir file names, as the Maildir spec (cr.yp.to/proto/maildir.html) and Dovecot's extensions
 * (doc.dovecot.org, "Maildir format") define them:
 *
 *   <unique>[,S=<raw size>][,W=<CRLF size>][:2,<flags>]
 *
 * The part before the first ':' is the base name; it never changes once delivered and is the
 * storage id (the uidlist key). The `:2,<flags>` info is changed by readers (mutt, Dovecot,
 * poplar) by renaming; flags are single ASCII letters kept in ASCII order ("S" = seen).
 */

/** Counter for the `Q` field: unique names for deliveries within one process and second. */
let deliveryCounter = 0;

/**
 * The host part of a unique name. The Maildir spec: "replace / with \057 and : with \072", so the
 * name stays one path component and the info separator stays unambiguous.
 */
export function encodeHostname(hostname: string): string {
  return hostname.replace(/\//g, '\\057').replace(/:/g, '\\072');
}

/**
 * A new unique name `<sec>.M<usec>P<pid>Q<counter>.<host>` (the Maildir spec's "modern" form, as
 * Dovecot writes it). `nowMs` may be fractional; microseconds come from its fraction.
 */
export function newUniqueName(nowMs: number, host: string): string {
  const sec = Math.floor(nowMs / 1000);
  const usec = Math.floor((nowMs - sec * 1000) * 1000);
  deliveryCounter = (deliveryCounter + 1) % Number.MAX_SAFE_INTEGER;
  return `${sec}.M${usec}P${process.pid}Q${deliveryCounter}.${host}`;
}

/**
 * R-X12: the Maildir spec's `T` (trashed) flag, which mutt and Dovecot show as deleted; poplar
 * sets it for `delete_mode = "hide"` and never lists a message that has it.
 */
export const HIDDEN_FLAG = 'T';

/** Splits a directory entry into its base name (the storage id) and its flags. */
export function parseName(name: string): { base: string; flags: string } {
  const colon = name.indexOf(':');
  if (colon < 0) return { base: name, flags: '' };
  const info = name.slice(colon + 1);
  return { base: name.slice(0, colon), flags: info.startsWith('2,') ? info.slice(2) : '' };
}

/**
 * Directory entries poplar considers messages. The Maildir spec: readers skip names starting
 * with a dot; a newline cannot be stored in the uidlist's line format.
 */
export function isMessageName(name: string): boolean {
  return name.length > 0 && !name.startsWith('.') && !name.includes('\n');
}

/** The CRLF size a `,W=<n>` field records (Dovecot's virtual size), if the base name has one. */
export function sizeFromName(base: string): number | undefined {
  const m = /,W=(\d{1,15})(?=,|$)/.exec(base);
  return m === null ? undefined : Number(m[1]);
}

/** The name a file gets in cur/: `:2,` appended unless the name already carries an info part. */
export function curName(name: string): string {
  return name.includes(':') ? name : `${name}:2,`;
}

/** The cur/ name with `flag` added; flags stay unique and in ASCII order (Maildir spec). */
export function withFlag(name: string, flag: string): string {
  const { base, flags } = parseName(name);
  const set = new Set(flags + flag);
  return `${base}:2,${[...set].sort().join('')}`;
}

/**
 * Order in which files first seen together get their uids: the delivery time in the name's
 * leading `<sec>` field, then the name. Names without a leading number sort last.
 */
export function compareDeliveryOrder(a: string, b: string): number {
  const ta = leadingSeconds(a);
  const tb = leadingSeconds(b);
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function leadingSeconds(name: string): number {
  const m = /^(\d{1,15})(?:\.|$)/.exec(name);
  return m === null ? Number.POSITIVE_INFINITY : Number(m[1]);
}

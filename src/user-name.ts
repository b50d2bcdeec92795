/**
 * The one rule for user and maildrop names, used by the admin CLI (`user add`, `grant`, `quota`,
 * `retention`, `deliver --user`), the passwd-file directory (a line with another name is skipped),
 * the delivery agent's recipient look-up (LMTP) and the mail stores (a Maildir directory name).
 *
 * A name is 1 to 255 octets of well-formed UTF-8 (R-X5: `chloé` is a name; compared as given,
 * without normalisation) with
 *   - no white space (any Unicode White_Space), no control character (C0, DEL, C1), no bidi
 *     control (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) and no U+FEFF;
 *   - none of  : / \ , * ? " < > | %
 *     `:` separates passwd-file fields, `,` the grants list; `/` is the R-K3 `user/mailbox`
 *     separator and the path separator; `\` is the R-K3 `domain\name` separator (USER parses it
 *     away before any look-up: it is syntax, never part of a name); `*` is the R-X14
 *     `user*master` separator; `? " < > |` cannot be in a file name on Windows and SMB shares;
 *     `%` would be read as an escape by `storage.maildir_path` (`%u`);
 *   - no leading `.` (hidden files, `.` and `..`), `-` (read as an option by poplar and by tools
 *     such as tar and rsync given the maildrop's directory) or `#` (a comment in the users file).
 * Everything else is allowed, e.g. `alice@example.org`, `a.b-c_d+e`, `Émile`.
 */

const MAX_OCTETS = 255;
const FORBIDDEN = ':/\\,*?"<>|%';
// eslint-disable-next-line no-control-regex
const INVISIBLE = /[\s\p{Cc}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]/u;

/** Why `name` cannot be a user or maildrop name, or undefined when it can. */
export function userNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'name is empty';
  if (/\p{Cs}/u.test(name)) return 'name is not valid UTF-8'; // a lone UTF-16 surrogate
  if (Buffer.byteLength(name, 'utf8') > MAX_OCTETS) return `name is longer than ${MAX_OCTETS} octets`;
  if (INVISIBLE.test(name)) return 'name contains white space, a control character or a bidi control';
  const bad = [...name].find((c) => FORBIDDEN.includes(c));
  if (bad !== undefined) return `name contains "${bad}" (none of ${FORBIDDEN.split('').join(' ')} may appear)`;
  if (/^[.\-#]/.test(name)) return 'name starts with ".", "-" or "#"';
  return undefined;
}

export function isValidUserName(name: string): boolean {
  return userNameProblem(name) === undefined;
}

/** A name for an error message: control and bidi characters shown as \u escapes. */
export function printableName(name: string): string {
  return JSON.stringify(name).replace(/[\u0080-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * POP3 commands as a typed union, and the parser from one framed line to a command (RFC 1939 §3,
 * §§4–7; RFC 2449 CAPA; RFC 1460 LAST). Pure and total: every byte sequence yields a command or a
 * Pop3Error. Keywords are case-insensitive (R-K8); keyword and arguments are separated by one or
 * more SPACE or TAB (R-S1); PASS takes the whole rest of the line (R-S15). Extensions: AUTH
 * (RFC 5034), STLS (RFC 2595), UTF8 (RFC 6856).
 */
import { Pop3Error } from '../errors.js';
import { MAX_ARGUMENT_NUMBER } from './limits.js';

export type Command =
  // AUTHORIZATION state (RFC 1939 §4, §7)
  | { readonly name: 'USER'; readonly user: string }
  | { readonly name: 'PASS'; readonly password: string }
  | { readonly name: 'APOP'; readonly user: string; readonly digest: string }
  /** RFC 5034: no mechanism lists the mechanisms (RFC 1734 clients); the response is base64 or `=`. */
  | { readonly name: 'AUTH'; readonly mechanism: string | undefined; readonly initialResponse: string | undefined }
  | { readonly name: 'STLS' }
  | { readonly name: 'UTF8' }
  // any state
  | { readonly name: 'CAPA' }
  | { readonly name: 'QUIT' }
  // TRANSACTION state (RFC 1939 §5, §7; RFC 1460 LAST)
  | { readonly name: 'STAT' }
  | { readonly name: 'LIST'; readonly msg: number | undefined }
  | { readonly name: 'RETR'; readonly msg: number }
  | { readonly name: 'DELE'; readonly msg: number }
  | { readonly name: 'NOOP' }
  | { readonly name: 'RSET' }
  | { readonly name: 'TOP'; readonly msg: number; readonly lines: number }
  | { readonly name: 'UIDL'; readonly msg: number | undefined }
  | { readonly name: 'LAST' };

export type CommandName = Command['name'];

export type ParseResult =
  | { readonly ok: true; readonly command: Command }
  | { readonly ok: false; readonly error: Pop3Error; readonly keyword: string | undefined };

/** Argument shapes; `rest` takes the remainder of the line verbatim. */
type ArgSpec = 'none' | 'optional-number' | 'number' | 'number-number' | 'word' | 'word-word' | 'rest' | 'optional-word-word';

const SPECS: Readonly<Record<CommandName, ArgSpec>> = {
  USER: 'word',
  PASS: 'rest',
  APOP: 'word-word',
  AUTH: 'optional-word-word',
  STLS: 'none',
  UTF8: 'none',
  CAPA: 'none',
  QUIT: 'none',
  STAT: 'none',
  LIST: 'optional-number',
  RETR: 'number',
  DELE: 'number',
  NOOP: 'none',
  RSET: 'none',
  TOP: 'number-number',
  UIDL: 'optional-number',
  LAST: 'none',
};

const SP = 0x20;
const TAB = 0x09;
const isSep = (b: number | undefined): boolean => b === SP || b === TAB;

function badSyntax(keyword: string | undefined, text: string): ParseResult {
  return { ok: false, error: new Pop3Error('BAD_SYNTAX', text), keyword };
}

/** A message number or line count: decimal digits only; huge values clamp to an impossible number. */
function parseNumber(arg: string): number | undefined {
  if (!/^[0-9]+$/.test(arg)) return undefined;
  const n = arg.length > 10 ? Infinity : Number(arg);
  return n > MAX_ARGUMENT_NUMBER ? MAX_ARGUMENT_NUMBER + 1 : n;
}

/** Parses one framed line (without its CRLF). */
export function parseCommand(line: Buffer): ParseResult {
  let i = 0;
  while (i < line.length && isSep(line[i])) i++; // tolerate leading blanks, as Exchange does
  let k = i;
  while (k < line.length && !isSep(line[k])) k++;
  const rawKeyword = line.subarray(i, k).toString('latin1');
  if (rawKeyword.length === 0) return badSyntax(undefined, 'Empty command line');
  if (!/^[A-Za-z0-9]{1,8}$/.test(rawKeyword)) return badSyntax(undefined, 'Unknown command');
  const keyword = rawKeyword.toUpperCase();
  const spec = (SPECS as Record<string, ArgSpec | undefined>)[keyword];
  if (spec === undefined) {
    return { ok: false, error: new Pop3Error('UNKNOWN_COMMAND', 'Unknown command'), keyword };
  }
  const name = keyword as CommandName;
  let j = k;
  while (j < line.length && isSep(line[j])) j++;
  const restBytes = line.subarray(j);

  if (spec === 'rest') {
    // R-S15: the password is everything after the separators, inner and trailing blanks included.
    if (restBytes.length === 0) return badSyntax(name, `${name} needs an argument`);
    if (restBytes.includes(0)) return badSyntax(name, 'NUL octets are not allowed');
    const password = decodeUtf8(restBytes);
    if (password === undefined) return badSyntax(name, 'Argument is not valid UTF-8');
    return { ok: true, command: { name: 'PASS', password } };
  }

  if (restBytes.includes(0)) return badSyntax(name, 'NUL octets are not allowed');
  const text = decodeUtf8(restBytes);
  if (text === undefined) return badSyntax(name, 'Argument is not valid UTF-8');
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(text)) return badSyntax(name, 'Control characters are not allowed');
  const args = text.split(/[ \t]+/).filter((a) => a.length > 0);
  return parseArgs(name as Exclude<CommandName, 'PASS'>, spec, args); // PASS, the one 'rest' command, returned above
}

/** Fewest and most arguments of each shape. */
const ARITY: Readonly<Record<ArgSpec, readonly [number, number]>> = {
  none: [0, 0], 'optional-number': [0, 1], number: [1, 1], 'number-number': [2, 2], word: [1, 1], 'word-word': [2, 2],
  rest: [1, 1], 'optional-word-word': [0, 2],
};

function parseArgs(name: Exclude<CommandName, 'PASS'>, spec: ArgSpec, args: string[]): ParseResult {
  const arity = ARITY[spec];
  if (args.length < arity[0]!) return badSyntax(name, `${name} needs ${arity[0] === 1 ? 'an argument' : `${arity[0]} arguments`}`);
  if (args.length > arity[1]!) return badSyntax(name, arity[1] === 0 ? `${name} takes no arguments` : `Too many arguments for ${name}`);
  const nums: number[] = [];
  if (spec === 'optional-number' || spec === 'number' || spec === 'number-number') {
    for (const a of args) {
      const n = parseNumber(a);
      if (n === undefined) return badSyntax(name, `Invalid number: ${printable(a)}`);
      nums.push(n);
    }
  }
  let command: Command;
  switch (name) {
    case 'USER':
      command = { name, user: args[0]! };
      break;
    case 'APOP':
      command = { name, user: args[0]!, digest: args[1]! };
      break;
    case 'AUTH':
      command = { name, mechanism: args[0]?.toUpperCase(), initialResponse: args[1] };
      break;
    case 'LIST':
    case 'UIDL':
      command = { name, msg: nums[0] };
      break;
    case 'RETR':
    case 'DELE':
      command = { name, msg: nums[0]! };
      break;
    case 'TOP':
      command = { name, msg: nums[0]!, lines: nums[1]! };
      break;
    default:
      command = { name };
  }
  return { ok: true, command };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(bytes: Buffer): string | undefined {
  // The usual command line is ASCII, which reads the same as latin1 (and faster than a decoder).
  let ascii = true;
  for (let i = 0; i < bytes.length && ascii; i++) ascii = bytes[i]! < 0x80;
  if (ascii) return bytes.toString('latin1');
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Echoes a client's argument safely: at most 20 printable characters. */
function printable(s: string): string {
  const clean = s.replace(/[^\x21-\x7e]/g, '?');
  return clean.length > 20 ? `${clean.slice(0, 20)}...` : clean;
}

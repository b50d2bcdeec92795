/**
 * Reading a password: from the terminal without echo (asked twice for a new one), or the first
 * line of stdin for `--password-stdin`. Prompts go to stderr so stdout stays clean for scripts.
 */
import { CliError } from './common.js';

/** The first line of stdin, without its line end. */
async function firstLineOfStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) {
    text += String(chunk);
    if (text.includes('\n')) break;
  }
  const line = text.split('\n')[0] ?? '';
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

/**
 * Asks on a terminal already in raw mode (no echo); backspace and Ctrl-U edit, Ctrl-C and Ctrl-D
 * cancel. Characters typed after the line end are left in `typed` for the next question.
 */
function askHidden(prompt: string, typed: { rest: string }): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let pw = '';
    const finish = (): void => {
      stdin.off('data', onData);
      stdin.pause();
      process.stderr.write('\n');
    };
    const onData = (chunk: string): void => {
      const chars = [...chunk];
      for (let i = 0; i < chars.length; i++) {
        const ch = chars[i]!;
        if (ch === '\r' || ch === '\n') {
          typed.rest = chars.slice(i + 1).join('').replace(/^\n/, '');
          finish();
          resolve(pw);
          return;
        }
        if (ch === '\u0003' || ch === '\u0004') {
          finish();
          reject(new CliError('cancelled'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') pw = [...pw].slice(0, -1).join('');
        else if (ch === '\u0015') pw = '';
        else if (ch >= ' ') pw += ch;
      }
    };
    stdin.setEncoding('utf8');
    stdin.on('data', onData);
    stdin.resume();
    const rest = typed.rest;
    typed.rest = '';
    if (rest !== '') onData(rest);
  });
}

/** A new password for `user`: from stdin, or asked twice on the terminal. Never empty. */
export async function readNewPassword(user: string, fromStdin: boolean): Promise<string> {
  let pw: string;
  if (fromStdin) {
    pw = await firstLineOfStdin();
  } else {
    if (!process.stdin.isTTY) throw new CliError('stdin is not a terminal; use --password-stdin to read the password from it');
    const typed = { rest: '' };
    process.stdin.setRawMode(true);
    try {
      pw = await askHidden(`New password for ${user}: `, typed);
      if (pw !== '' && (await askHidden('Repeat the password: ', typed)) !== pw) throw new CliError('the passwords do not match');
    } finally {
      process.stdin.setRawMode(false);
    }
  }
  if (pw === '') throw new CliError('empty password refused');
  return pw;
}

/**
 * Another Node.js process for tests that need a second process on the same Maildir (a delivery,
 * an expiry, a store of its own): runs an ES module snippet and resolves its stdout.
 */
import { spawn } from 'node:child_process';

/** The built MaildirStore module, for `await import(...)` inside a snippet. */
export const MAILDIR_STORE_MODULE = new URL('../../src/storage/maildir/maildir-store.js', import.meta.url).href;

/** `flags`: Node options before the snippet (e.g. --expose-gc). */
export function runNode(code: string, flags: readonly string[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...flags, '--input-type=module', '-e', code]);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => (status === 0 ? resolve(out) : reject(new Error(`exit ${status}: ${err}`))));
  });
}

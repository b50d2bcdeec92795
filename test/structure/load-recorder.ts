/**
 * Module hooks (node:module register) that append the URL of every module the process loads to
 * the file named by POPLAR_LOAD_LOG (`%p` in it: the process id); composition.test.ts runs the CLI with
 * them (`--import`).
 */
import { appendFileSync } from 'node:fs';

type Next = (url: string, context: unknown) => Promise<unknown>;

export async function load(url: string, context: unknown, next: Next): Promise<unknown> {
  // `%p` in the name is the process id: a cluster's primary and workers each record to their own file.
  const file = process.env['POPLAR_LOAD_LOG']?.replace('%p', String(process.pid));
  if (file !== undefined && url.startsWith('file:')) appendFileSync(file, `${url}\n`);
  return next(url, context);
}

/**
 * Module hooks (node:module register) that append the URL of every module the process loads to
 * the file named by POPLAR_LOAD_LOG; composition.test.ts runs the CLI with them (`--import`).
 */
import { appendFileSync } from 'node:fs';

type Next = (url: string, context: unknown) => Promise<unknown>;

export async function load(url: string, context: unknown, next: Next): Promise<unknown> {
  const log = process.env['POPLAR_LOAD_LOG'];
  if (log !== undefined && url.startsWith('file:')) appendFileSync(log, `${url}\n`);
  return next(url, context);
}

/** File-system error helpers shared by the Maildir modules. */
import { StorageError } from '../../errors.js';

/** The errno code of a Node.js system error (`ENOENT`, `EEXIST` …), if it is one. */
export function errCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}

/** For `.catch(ignoreEnoent)`: a file already gone is what the caller wanted. */
export function ignoreEnoent(err: unknown): void {
  if (errCode(err) !== 'ENOENT') throw err;
}

/** Anything a Maildir operation throws reaches callers as a StorageError ('IO' unless typed). */
export function toStorageError(err: unknown, what: string): StorageError {
  if (err instanceof StorageError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new StorageError('IO', `${what}: ${detail}`, err);
}

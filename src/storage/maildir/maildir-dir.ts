/**
 * Directory work on one maildir: creating the standard layout, scanning new/ and cur/, finding a
 * message after another program renamed it, and sizing a file. Layout (Maildir spec,
 * cr.yp.to/proto/maildir.html): `tmp/` being written, `new/` delivered and not yet seen by a
 * reader, `cur/` seen by a reader, with `:2,<flags>` info in the name.
 */
import { lstatSync } from 'node:fs';
import { lstat, mkdir, open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errCode } from './maildir-errors.js';
import { moveNewToCur } from './maildir-bulk.js';
import { isMessageName, parseName } from './maildir-filename.js';
import { assertRealDir, linkRefused, realRootOf, reportLink, type MaildirLogger } from './maildir-links.js';

/** Maildir directories are private to the mailbox owner. */
const DIR_MODE = 0o700;

/**
 * Creates root/{cur,new,tmp} as needed and checks that the root and each of them is a directory,
 * not a symbolic link (maildir-links.ts). Returns the root with the links above it resolved.
 */
export async function ensureMaildir(root: string): Promise<string> {
  await mkdir(root, { recursive: true, mode: DIR_MODE });
  const realRoot = await realRootOf(root);
  for (const sub of ['cur', 'new', 'tmp']) {
    await mkdir(join(root, sub), { recursive: true, mode: DIR_MODE });
    await assertRealDir(join(root, sub));
  }
  return realRoot;
}

/** fsync(2) of a directory, making renames and unlinks in it durable. */
export async function fsyncDir(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } catch (err) {
    if (errCode(err) !== 'EINVAL') throw err; // file systems that cannot sync directories
  } finally {
    await fh.close();
  }
}

/**
 * A directory's identity and last change (ctime cannot be set back by utimes, unlike mtime).
 * Milliseconds as a double keep ~0.25 µs of the nanosecond ctime: plenty, as a listing is trusted
 * only when its stamp is older than the dirty window (maildir-listing.ts), so a later change
 * stamps a ctime at least that much later. (A `bigint` stat costs 1.3–2× the CPU of this one.)
 */
export interface DirStamp {
  readonly ino: number;
  readonly ctimeMs: number;
}

export function sameStamp(a: DirStamp | undefined, b: DirStamp | undefined): boolean {
  return a !== undefined && b !== undefined && a.ino === b.ino && a.ctimeMs === b.ctimeMs;
}

/** The stamp of a directory, undefined if it does not exist; a symbolic link is refused. */
export async function stampOf(path: string): Promise<DirStamp | undefined> {
  try {
    const st = await lstat(path);
    if (st.isSymbolicLink()) throw linkRefused(path);
    return { ino: st.ino, ctimeMs: st.ctimeMs };
  } catch (err) {
    if (errCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * stampOf with lstat(2) on the server thread (`storage.maildir_reads = "event-loop"`): a settled
 * login checks its listing with such stats, each microseconds against a thread-pool round trip
 * (two wake-ups), and a missing directory raises no error object.
 */
export function stampOfSync(path: string): DirStamp | undefined {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (st === undefined) return undefined;
  if (st.isSymbolicLink()) throw linkRefused(path);
  return { ino: st.ino, ctimeMs: st.ctimeMs };
}

export interface MaildirScan {
  /** Base name -> path relative to root of every message in cur/. */
  readonly found: Map<string, string>;
  /** R-S4 CRLF sizes of files measured as they were moved from new/, by base name (emptied once used, maildir-assign.ts). */
  readonly sized: Map<string, number>;
  /** new/ as it was when it was last listed empty (undefined: never, or it does not exist). */
  readonly newStamp: DirStamp | undefined;
  /** cur/ as it was before it was listed. */
  readonly curStamp: DirStamp | undefined;
  /** Date.now() just before newStamp, and before curStamp, were taken. */
  readonly newAt: number;
  readonly curAt: number;
}

/** Rounds of "list new/, move what it holds" before giving up on seeing new/ empty. */
const NEW_ROUNDS = 3;

/**
 * Moves every message in new/ to cur/ (appending `:2,`, as Dovecot and mutt do when they first
 * see it), then lists cur/. A file another program moved first (ENOENT) is found by the cur/
 * listing, which is read after the moves. Each directory is stamped before it is listed, so a
 * change made after the listing changes the stamp (maildir-listing.ts relies on it): new/ is
 * listed again after moves until it is seen empty. Files are sized as they are moved (maildir-bulk.ts).
 */
export async function scanMaildir(root: string, log?: MaildirLogger): Promise<MaildirScan> {
  await assertRealDir(root); // new/ and cur/ are checked as they are stamped
  let newAt = Date.now();
  let newStamp: DirStamp | undefined;
  const sized = new Map<string, number>();
  let moved = false;
  for (let round = 0; ; round++) {
    newAt = Date.now();
    const stamp = await stampOf(join(root, 'new'));
    const names = await listDir(join(root, 'new'), log);
    if (names.length === 0) {
      newStamp = stamp;
      break;
    }
    moved = true;
    for (const [base, size] of await moveNewToCur(root, names)) sized.set(base, size);
    if (round + 1 >= NEW_ROUNDS) break; // delivered to all the time: stamp left undefined
  }
  // A message acknowledged by a delivery whose new/ fsync ran before this move is durable in
  // cur/ only once cur/ is synced (ext4 commits the rename with new/'s sync; not every FS does).
  if (moved) await fsyncDir(join(root, 'cur'));
  const curAt = Date.now();
  const curStamp = await stampOf(join(root, 'cur'));
  const found = new Map<string, string>();
  for (const name of await listDir(join(root, 'cur'), log)) {
    const colon = name.indexOf(':');
    found.set(colon < 0 ? name : name.slice(0, colon), `cur/${name}`);
  }
  return { found, sized, newStamp, curStamp, newAt, curAt };
}

/**
 * The Maildir spec: a file left in tmp/ for 36 hours is debris of a delivery that never finished
 * (a crash between write and rename); readers remove it. Younger files may be being written.
 */
export const TMP_STALE_MS = 36 * 60 * 60 * 1000;

export async function cleanTmp(root: string, now: number): Promise<void> {
  for (const name of await listDir(join(root, 'tmp'))) {
    const path = join(root, 'tmp', name);
    try {
      if (now - (await lstat(path)).mtimeMs > TMP_STALE_MS) await unlink(path);
    } catch (err) {
      if (errCode(err) !== 'ENOENT') throw err;
    }
  }
}

/** Base names present in cur/ and new/ right now, without moving anything. */
export async function listBases(root: string): Promise<Set<string>> {
  const bases = new Set<string>();
  for (const sub of ['new', 'cur']) {
    for (const name of await listDir(join(root, sub))) bases.add(parseName(name).base);
  }
  return bases;
}

/** Base name -> path relative to root of every message in new/ and cur/, moving nothing. */
export async function listFiles(root: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const sub of ['new', 'cur']) {
    for (const name of await listDir(join(root, sub))) files.set(parseName(name).base, `${sub}/${name}`);
  }
  return files;
}

/** Where the message with base name `base` is now (relative to root), if anywhere. */
export async function locate(root: string, base: string): Promise<string | undefined> {
  for (const sub of ['cur', 'new']) {
    for (const name of await listDir(join(root, sub))) {
      if (parseName(name).base === base) return `${sub}/${name}`;
    }
  }
  return undefined;
}

/**
 * The message names in a folder. Symbolic links are left out (reported to `log`, once each):
 * the entry's type comes with readdir(3), and Node lstats the entries whose type the file system
 * does not report.
 */
async function listDir(path: string, log?: MaildirLogger): Promise<string[]> {
  try {
    // One readdir, not a streamed opendir: the entries are garbage at once, so streaming them
    // lowered no live peak (bench/listing-memory.ts), and its promise per entry cost ~6 µs each
    // (+0.6 s of CPU for a first sight of 50,000 files: docs/benchmarks.md).
    const names: string[] = [];
    for (const entry of await readdir(path, { withFileTypes: true })) {
      if (!isMessageName(entry.name)) continue;
      if (entry.isSymbolicLink()) reportLink(log, `${path}/${entry.name}`);
      else names.push(entry.name);
    }
    return names;
  } catch (err) {
    if (errCode(err) === 'ENOENT') return [];
    throw err;
  }
}

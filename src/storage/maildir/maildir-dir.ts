/**
 * Directory work on one maildir: creating the standard layout, scanning new/ and cur/, finding a
 * message after another program renamed it, and sizing a file. Layout (Maildir spec,
 * cr.yp.to/proto/maildir.html): `tmp/` being written, `new/` delivered and not yet seen by a
 * reader, `cur/` seen by a reader, with `:2,<flags>` info in the name.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CrlfSizer } from '../../protocol/crlf.js';
import { BODY_READ_CHUNK } from '../../protocol/limits.js';
import { errCode } from './maildir-errors.js';
import { curName, isMessageName, parseName } from './maildir-filename.js';

/** Maildir directories are private to the mailbox owner. */
const DIR_MODE = 0o700;

/** Creates root/{cur,new,tmp} as needed. */
export async function ensureMaildir(root: string): Promise<void> {
  await mkdir(root, { recursive: true, mode: DIR_MODE });
  for (const sub of ['cur', 'new', 'tmp']) {
    await mkdir(join(root, sub), { recursive: true, mode: DIR_MODE });
  }
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
 * Moves every message in new/ to cur/ (appending `:2,`, as Dovecot and mutt do when they first
 * see it), then lists cur/. Returns base name -> path relative to root. A file another program
 * moved first (ENOENT) is found by the cur/ listing, which is read after the moves.
 */
export async function scanMaildir(root: string): Promise<Map<string, string>> {
  for (const name of await listDir(join(root, 'new'))) {
    try {
      await rename(join(root, 'new', name), join(root, 'cur', curName(name)));
    } catch (err) {
      if (errCode(err) !== 'ENOENT') throw err;
    }
  }
  const found = new Map<string, string>();
  for (const name of await listDir(join(root, 'cur'))) {
    found.set(parseName(name).base, `cur/${name}`);
  }
  return found;
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
      if (now - (await stat(path)).mtimeMs > TMP_STALE_MS) await unlink(path);
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

/** R-S4: the CRLF size of a file, by streaming it through the one CrlfSizer; undefined if gone. */
export async function crlfSizeOfFile(path: string): Promise<number | undefined> {
  const sizer = new CrlfSizer();
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: BODY_READ_CHUNK })) {
      sizer.push(chunk as Buffer);
    }
  } catch (err) {
    if (errCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  return sizer.total();
}

async function listDir(path: string): Promise<string[]> {
  try {
    return (await readdir(path)).filter(isMessageName);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return [];
    throw err;
  }
}

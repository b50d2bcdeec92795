/**
 * One session's view of a Maildir maildrop (R-S3): the messages seen at open, by base name.
 * Other programs may rename a file meanwhile (mutt or Dovecot changing flags, moving new/ to
 * cur/), so every file operation that meets ENOENT looks the base name up again in cur/ and new/
 * before deciding the message is gone. The messages and paths seen at open may be shared with
 * other sessions (maildir-listing.ts) and are never changed: a path this session learns (a file
 * found renamed, its own flag renames) goes into its own `moved` map, looked at first.
 */
import { closeSync, constants, fstat as fstatFd, fstatSync, open as openFd, openSync, read as readFd, readSync } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { StorageError } from '../../errors.js';
import { ChunkPool, pooledView, releaseChunk, type PooledChunk } from '../../protocol/chunk-pool.js';
import { RETR_READ_CHUNK } from '../../protocol/limits.js';
import { readableOf, type CommitChanges, type MaildropSnapshot, type MessageInfo, type MessageSource } from '../mail-store.js';
import type { MessageList } from '../message-list.js';
import type { Listing } from './maildir-listing.js';
import { fsyncDir, locate } from './maildir-dir.js';
import { HIDDEN_FLAG, parseName, withFlag } from './maildir-filename.js';
import { errCode, toStorageError } from './maildir-errors.js';
import { assertRealDir, fdInMaildir, fdInMaildirSync, isLinkError, linkRefused, NOFOLLOW } from './maildir-links.js';
import type { FileLock } from '../file-lock.js';
import type { MaildirMaildrop, MaildropSettings } from './maildir-maildrop.js';

/** Look-ups after ENOENT before a message counts as gone (each one follows a rename). */
const MAX_RELOCATE = 3;

/**
 * How message files are read (config `storage.maildir_reads`). 'event-loop': open(2) and read(2)
 * on the server thread. A message file is read once, start to end, and usually sits in the page
 * cache (it was just delivered or listed) or on SSD, where a read costs microseconds; each
 * thread-pool round trip instead costs two wake-ups and context switches (a measurable share of
 * the server's CPU per GB: docs/benchmarks.md). The price is nginx's default one: a read
 * that misses the cache on a slow disk holds every session for that long. 'threadpool': the
 * same reads through libuv's pool, for such disks.
 */
export type ReadMode = 'event-loop' | 'threadpool';

interface FileReader {
  /** A descriptor of the regular file at `path`, which must lie in realRoot/cur or realRoot/new. */
  open(path: string, realRoot: string): Promise<number>;
  /** Octets read into `buf` from the file's current offset; a number when the read is synchronous. */
  read(fd: number, buf: Buffer): number | Promise<number>;
}

const openAsync = promisify(openFd);
const readAsync = promisify(readFd);
const fstatAsync = promisify(fstatFd);
/**
 * O_NONBLOCK: a FIFO someone made in cur/ must not hold the server (or a pool thread) in open(2).
 * O_NOFOLLOW: a message file that is a symbolic link is refused (maildir-links.ts).
 */
const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | NOFOLLOW;

/**
 * The descriptor, if it is a regular file in the maildir's cur/ or new/ (not reached through a
 * folder swapped for a link, maildir-links.ts); anything else is refused (the caller closes it).
 */
function checked(fd: number, isFile: boolean, inMaildir: boolean): number {
  if (isFile && inMaildir) return fd;
  throw new StorageError('IO', isFile ? 'message file outside the maildir' : 'not a regular file');
}

/** For a failed open(2) of a message file: a symbolic link is refused as such. */
function openError(path: string, err: unknown): unknown {
  return isLinkError(err) ? linkRefused(path) : err;
}

const READERS: Readonly<Record<ReadMode, FileReader>> = {
  'event-loop': {
    open: async (path, realRoot) => {
      let fd: number;
      try {
        fd = openSync(path, READ_FLAGS);
      } catch (err) {
        throw openError(path, err);
      }
      try {
        return checked(fd, fstatSync(fd).isFile(), fdInMaildirSync(fd, realRoot));
      } catch (err) {
        closeSync(fd);
        throw err;
      }
    },
    read: (fd, buf) => readSync(fd, buf, 0, buf.length, null),
  },
  threadpool: {
    open: async (path, realRoot) => {
      const fd = await openAsync(path, READ_FLAGS).catch((err: unknown) => Promise.reject(openError(path, err)));
      try {
        const [st, inside] = await Promise.all([fstatAsync(fd), fdInMaildir(fd, realRoot)]);
        return checked(fd, st.isFile(), inside);
      } catch (err) {
        closeSync(fd);
        throw err;
      }
    },
    read: async (fd, buf) => (await readAsync(fd, buf, 0, buf.length, null)).bytesRead,
  },
};

/**
 * A message file in chunks of up to RETR_READ_CHUNK octets, each read into a buffer of
 * `readPool` and handed to the consumer, which gives it back once sent (protocol/chunk-pool.ts;
 * one it keeps is simply not reused). A read that returns less than asked for is taken as the end
 * of the file: a Maildir message file never changes once delivered, and a regular file reads short
 * only at its end, so
 * the usual message (one chunk) costs open and one read, and the close, done on the event loop
 * in either mode: closing a file that was only read does not wait for the disk.
 * The descriptor is closed at the end, on a failed read, or by close() (TOP stopping early, a
 * connection lost mid-message).
 */
class FileSource implements MessageSource {
  /** The buffers message files are read into, shared by every source; at most 16 kept free. */
  private static readonly readPool = new ChunkPool(RETR_READ_CHUNK, 16);

  constructor(
    private fd: number,
    private readonly reader: FileReader,
  ) {}

  next(): Buffer | undefined | Promise<Buffer | undefined> {
    if (this.fd < 0) return undefined;
    const buf = FileSource.readPool.take();
    let read: number | Promise<number>;
    try {
      read = this.reader.read(this.fd, buf);
    } catch (err) {
      return this.failed(buf, err);
    }
    return typeof read === 'number'
      ? this.got(buf, read)
      : read.then(
          (n) => this.got(buf, n),
          (err: unknown) => this.failed(buf, err),
        );
  }

  close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    try {
      closeSync(fd);
    } catch {
      // nothing to do about a failed close of a file only read
    }
  }

  private got(buf: PooledChunk, n: number): PooledChunk | undefined {
    if (n < buf.length) this.close(); // the end of the file (see above)
    if (n > 0) return pooledView(buf, 0, n);
    releaseChunk(buf);
    return undefined;
  }

  private failed(buf: PooledChunk, err: unknown): never {
    releaseChunk(buf);
    this.close();
    throw err;
  }
}

export class MaildirSnapshot implements MaildropSnapshot {
  private released = false;
  private readonly root: string;
  /** Paths this session found or made since open, over the listing's. */
  private readonly moved = new Map<string, string>();
  private objects: readonly MessageInfo[] | undefined;
  readonly list: MessageList;

  /** `maildrop`: the owner of the claim this snapshot holds (maildir-maildrop.ts); released once. */
  constructor(
    readonly mailbox: string,
    /** The messages and their paths at open; shared with other snapshots, never mutated. */
    private readonly listing: Listing,
    private readonly maildrop: MaildirMaildrop,
    private readonly settings: MaildropSettings,
    private readonly exclusiveLock: FileLock | undefined,
  ) {
    this.root = maildrop.root;
    this.list = listing.list;
  }

  get messages(): readonly MessageInfo[] {
    return (this.objects ??= Object.freeze(this.list.toArray()));
  }

  async read(id: string): Promise<Readable> {
    return readableOf(await this.open(id));
  }

  async open(id: string, at?: number): Promise<MessageSource> {
    this.checkLive();
    // The handle is opened first, so a vanished file rejects here rather than failing mid-reply.
    const reader = READERS[this.settings.reads];
    const realRoot = this.maildrop.realRoot;
    const fd = await this.onFile(id, (path) => reader.open(path, realRoot), at).catch((err: unknown) => {
      throw toStorageError(err, `reading message ${id}`);
    });
    if (fd === undefined) throw new StorageError('MESSAGE_GONE', `message ${id} is gone`);
    return new FileSource(fd, reader);
  }

  /**
   * R-K4 / R-S11: unlinks the expunged messages and adds the `S` flag to the seen ones and the
   * `T` (trashed) flag to the hidden ones (R-X12), one rename per message, then fsyncs cur/.
   * Only messages of this snapshot are touched; a file already gone is skipped, so a commit that
   * failed part-way can simply be repeated.
   */
  async commit(changes: CommitChanges): Promise<void> {
    this.checkLive();
    try {
      await this.apply(changes);
    } catch (err) {
      throw toStorageError(err, `committing changes to ${this.mailbox}`);
    }
  }

  private async apply(changes: CommitChanges): Promise<void> {
    const expunge = new Set(changes.expunge.filter((id) => this.list.indexOf(id) >= 0));
    if (expunge.size > 0 || changes.seen.length > 0 || (changes.hide?.length ?? 0) > 0) {
      // Unlinks and renames go by path: the root and cur/ must still be themselves, not links
      // to another directory put in their place since the listing (maildir-links.ts).
      await assertRealDir(this.root);
      await assertRealDir(join(this.root, 'cur'));
    }
    for (const id of expunge) await this.onFile(id, (path) => unlink(path));
    const flags = new Map<string, string>();
    for (const id of changes.seen) flags.set(id, 'S');
    for (const id of changes.hide ?? []) flags.set(id, `${flags.get(id) ?? ''}${HIDDEN_FLAG}`);
    // The files change: the next open lists them again (their ctime would tell it too).
    if (expunge.size === 0 && flags.size === 0) return; // a QUIT with nothing to change: no fsync
    this.maildrop.invalidateListing();
    for (const [id, add] of flags) {
      if (expunge.has(id) || this.list.indexOf(id) < 0) continue;
      await this.onFile(id, async (path) => {
        const name = basename(path);
        const has = parseName(name).flags;
        if ([...add].every((f) => has.includes(f))) return;
        const target = `cur/${withFlag(name, add)}`;
        await rename(path, join(this.root, target));
        this.moved.set(id, target);
      });
    }
    await fsyncDir(join(this.root, 'cur'));
    // After the unlinks are durable; if this fails, the next commit or open repeats nothing harmful.
    await this.maildrop.forget([...expunge], this.settings);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.maildrop.release(this.exclusiveLock);
  }

  /**
   * Runs `op` on the message's current path; on ENOENT finds the file again (it may have been
   * renamed) and retries. Undefined when the message is no longer in the maildir.
   */
  private async onFile<T>(id: string, op: (path: string) => Promise<T>, at?: number): Promise<T | undefined> {
    let rel = (this.moved.size === 0 ? undefined : this.moved.get(id)) ?? this.listing.path(id, at);
    for (let attempt = 0; rel !== undefined && attempt <= MAX_RELOCATE; attempt++) {
      try {
        // Plain concatenation: the root is a normalized absolute path and `rel` a name in cur/ or
        // new/ (path.join would normalize the whole path again on every RETR).
        return await op(`${this.root}/${rel}`);
      } catch (err) {
        if (errCode(err) !== 'ENOENT') throw err;
      }
      rel = await locate(this.root, id);
      if (rel !== undefined) this.moved.set(id, rel);
    }
    return undefined;
  }

  private checkLive(): void {
    if (this.released) throw new StorageError('IO', `snapshot of ${this.mailbox} was released`);
  }
}

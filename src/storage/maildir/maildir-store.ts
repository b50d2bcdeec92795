/**
 * The Maildir backend (R-X7), sharing the standard layout root/{cur,new,tmp} with Postfix
 * (`home_mailbox = Maildir/`), Dovecot and mutt. Storage id = the file's base name (before `:2,`).
 * Uids and exact sizes live in poplar's own `poplar-uidlist` (maildir-uidlist.ts); the files of
 * other programs are only ever moved new/ -> cur/ and given flags, as every Maildir reader does.
 *
 * A thin map from mailbox name to maildrop object: `path` gives the root, the registry
 * (maildir-registry.ts) the MaildirMaildrop that owns it, which does the work and holds the lock
 * rules (the lock and marker table is in maildir-maildrop.ts). Delivery (R-X6): the message file
 * is written, fsynced and renamed into new/, then shares a group commit (maildir-commit.ts) with
 * the deliveries that arrive meanwhile; it resolves only once its file, its directory entry and
 * its uid record are durable.
 *
 * Registry: each store gets a new MaildropRegistry unless one is passed (`registry`). Stores
 * that share a registry coordinate in this process exactly as one store does: the lock rule sees
 * each other's plain snapshots, an expiry ignores the lingering marker another of them left, and
 * each maildrop has one uidlist mutex, one session marker, one listing cache, one group commit.
 * Stores on separate registries coordinate through the files only, as separate processes do
 * (the lock table in maildir-maildrop.ts): no uid is ever given twice and no expiry removes a
 * message a live session listed, but an exclusive open is not refused for the other store's plain
 * snapshots, and its lingering marker makes an expiry report the maildrop in use for
 * MARKER_LINGER_MS. Not a process-wide default, because nothing needs one: every composition root
 * makes one store per process (cli/serve.ts createStore, once per `poplar` command, the server's
 * POP3, LMTP and retention sharing it), and MaildirStore is not part of the public API
 * (src/index.ts). Code that makes two stores on the same maildirs in one process passes them the
 * same registry; tests pass their own to observe or pause the work (MaildropHooks).
 */
import { hostname } from 'node:os';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { StorageError } from '../../errors.js';
import {
  isValidMailboxName,
  isValidUidl,
  type DeliverOptions,
  type DeliveryResult,
  type ExpireResult,
  type ExpiryCandidate,
  type MailStore,
  type MaildropSnapshot,
  type OpenOptions,
  type Usage,
} from '../mail-store.js';
import { ensureMaildir } from './maildir-dir.js';
import { errCode, toStorageError } from './maildir-errors.js';
import { encodeHostname, newUniqueName } from './maildir-filename.js';
import type { MaildirLogger } from './maildir-links.js';
import { DIRTY_WINDOW_MS } from './maildir-listing.js';
import { LOCK_WAIT_MS } from '../file-lock.js';
import type { MaildirMaildrop, MaildropSettings } from './maildir-maildrop.js';
import { MaildropRegistry } from './maildir-registry.js';
import type { ReadMode } from './maildir-snapshot.js';

export { SESSION_LOCK_FILE, UIDLIST_LOCK_FILE } from './maildir-maildrop.js';

export interface MaildirStoreOptions {
  /** The maildrop's root directory for a (validated) mailbox name, e.g. `<data>/mail/%u`. */
  readonly path: (mailbox: string) => string;
  /** Host part of new file names (default: os.hostname()). */
  readonly hostname?: string;
  /** Clock for new file names, in (possibly fractional) ms since the epoch. */
  readonly now?: () => number;
  /** How long a writer waits for the uidlist lock before failing with 'IO' (default 10 s). */
  readonly lockWaitMs?: number;
  /** maildir-listing.ts: a directory changed this recently is listed again next time (default 100 ms). */
  readonly dirtyWindowMs?: number;
  /** How message files are read (config `storage.maildir_reads`; maildir-snapshot.ts); default 'event-loop'. */
  readonly reads?: ReadMode;
  /** Where symbolic links left out of listings are reported, once each (maildir-links.ts). */
  readonly logger?: MaildirLogger;
  /** The maildrop objects this store shares with other stores (see above); default: its own. */
  readonly registry?: MaildropRegistry;
}

export class MaildirStore implements MailStore {
  private readonly registry: MaildropRegistry;
  private readonly settings: MaildropSettings;

  constructor(private readonly opts: MaildirStoreOptions) {
    const host = encodeHostname(opts.hostname ?? hostname());
    const now = opts.now ?? (() => performance.timeOrigin + performance.now());
    this.registry = opts.registry ?? new MaildropRegistry();
    this.settings = {
      lockWaitMs: opts.lockWaitMs ?? LOCK_WAIT_MS,
      dirtyWindowMs: opts.dirtyWindowMs ?? DIRTY_WINDOW_MS,
      reads: opts.reads ?? 'event-loop',
      logger: opts.logger,
      uniqueName: () => newUniqueName(now(), host),
    };
  }

  async open(mailbox: string, opts: OpenOptions): Promise<MaildropSnapshot> {
    const maildrop = this.maildrop(mailbox);
    try {
      return await maildrop.open(mailbox, opts.exclusive, this.settings);
    } catch (err) {
      throw toStorageError(err, `opening ${mailbox}`);
    }
  }

  async deliver(mailbox: string, message: Buffer | AsyncIterable<Buffer>, opts: DeliverOptions = {}): Promise<DeliveryResult> {
    const maildrop = this.maildrop(mailbox);
    if (opts.uidl !== undefined && !isValidUidl(opts.uidl)) {
      throw new StorageError('INVALID_UIDL', `invalid UIDL ${JSON.stringify(opts.uidl)}`);
    }
    try {
      return await maildrop.deliver(message, opts, this.settings);
    } catch (err) {
      throw toStorageError(err, `delivering to ${mailbox}`);
    }
  }

  async usage(mailbox: string): Promise<Usage> {
    const maildrop = this.maildrop(mailbox);
    try {
      return await maildrop.usage();
    } catch (err) {
      throw toStorageError(err, `measuring ${mailbox}`);
    }
  }

  async expire(
    mailbox: string,
    select: (m: ExpiryCandidate) => boolean,
    opts: { dryRun?: boolean } = {},
  ): Promise<ExpireResult> {
    if (!(await this.exists(mailbox))) return { inUse: false, removed: [] };
    const maildrop = this.maildrop(mailbox);
    try {
      return await maildrop.expire(select, opts.dryRun === true, this.settings);
    } catch (err) {
      throw toStorageError(err, `expiring messages of ${mailbox}`);
    }
  }

  async exists(mailbox: string): Promise<boolean> {
    const root = this.root(mailbox);
    try {
      return (await lstat(join(root, 'cur'))).isDirectory(); // a link to a directory is no maildir
    } catch (err) {
      if (errCode(err) === 'ENOENT' || errCode(err) === 'ENOTDIR') return false;
      throw toStorageError(err, `checking ${mailbox}`);
    }
  }

  async create(mailbox: string): Promise<void> {
    const root = this.root(mailbox);
    await ensureMaildir(root).catch((err: unknown) => {
      throw toStorageError(err, `creating ${mailbox}`);
    });
  }

  /**
   * Removes the session markers left lingering and releases the uidlist locks kept after
   * deliveries, for every maildrop of the registry; snapshots release their own locks.
   */
  async close(): Promise<void> {
    await this.registry.close();
  }

  private maildrop(mailbox: string): MaildirMaildrop {
    return this.registry.get(this.root(mailbox));
  }

  private root(mailbox: string): string {
    if (!isValidMailboxName(mailbox)) {
      throw new StorageError('INVALID_NAME', `invalid mailbox name ${JSON.stringify(mailbox)}`);
    }
    return this.opts.path(mailbox);
  }
}

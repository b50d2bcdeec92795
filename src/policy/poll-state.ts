/**
 * What R-X10's poll and download policy must remember about each maildrop across sessions and
 * restarts: when it was last logged in to (LOGIN-DELAY, RFC 2449 §6.5) and how many octets
 * RETR/TOP sent from it on the current UTC day (the daily download cap).
 *
 * One small JSON file per maildrop in `policy.state_dir`, beside the per-user policy file:
 *
 *   {data_dir}/policy-state/alice.json   {"last_login":1763775000000,"day":"2026-11-22","octets":52311}
 *
 * The name is the maildrop name percent-encoded (encodeURIComponent, which leaves no `/`), or a
 * SHA-256 of it when that would be too long for a file name. The records are kept in memory once
 * read, so this process's view is authoritative; every change is written back by replacing the
 * file (temporary file, rename), writes to one file coalesced and in order; only maildrops with a
 * login delay or a download cap are recorded. A file that is
 * missing or unreadable counts as an empty record (no previous login, nothing downloaded): the
 * policy fails open rather than locking a user out. Without a directory the records live in
 * memory only (tests, the memory store). With `auth.directory = "postgres"` the records are rows
 * instead, shared by every node (postgres-poll-state.ts); PollLimiter sees either as a PollStore.
 *
 * R-X16: with `refresh` (each worker of a multi-process server), a known record is checked
 * against its file at every `get` (one stat): when another process wrote it since, its values
 * are merged in (the later login, the larger count of the same day), so a login on one worker
 * is seen by the LOGIN-DELAY check of the next login on any other. A login is claimed holding
 * the record's lock file, `<name>.json.lock` (storage/file-lock.ts FileLock: a lock every process
 * honours, broken when its holder died), around the read, the decision and the write of the
 * file: of two logins racing each other on any workers, exactly one is admitted. A cancelled
 * claim and the download counts are written under the same lock too, each write starting from
 * the file as it is then: octets a process counted and has not written are added to the file's
 * count of the day (never written over), and a later login in the file is kept.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileLock } from '../storage/file-lock.js';

/** How long a login waits for another process's claim of the same record (then it fails, -ERR [SYS/TEMP]). */
const CLAIM_LOCK_WAIT_MS = 5_000;

/** The answer of PollStore.claimLogin: admitted or not, and the login before (ms since the epoch). */
export type LoginClaim = { readonly admitted: true; readonly previous: number | undefined } | { readonly admitted: false; readonly previous: number };

/** Where R-X10's poll state is kept; every method of one maildrop acts on one record. */
export interface PollStore {
  /**
   * Records `now` as the last login of `mailbox` unless the previous one lies less than `delayMs`
   * before `now` (one "in the future", from a clock set back, does not count), as one step: two
   * logins racing each other cannot both be admitted.
   */
  claimLogin(mailbox: string, now: number, delayMs: number): Promise<LoginClaim>;
  /** The claimed login happened: keep it (rejects when the write failed). */
  confirmLogin(mailbox: string): Promise<void>;
  /** The login claimed at `claimed` did not happen: the last login is `previous` again, unless another came since. */
  cancelLogin(mailbox: string, claimed: number, previous: number | undefined): Promise<void>;
  /** Octets RETR/TOP sent from `mailbox` on the UTC `day` (`YYYY-MM-DD`), this process's unsaved counts included. */
  downloaded(mailbox: string, day: string): Promise<number>;
  /** Counts `octets` sent on `day`, at once for this process; `saveDownload` keeps them. */
  countDownload(mailbox: string, day: string, octets: number): void;
  /** Keeps what was counted (rejects when the write failed; the counts still hold in this process). */
  saveDownload(mailbox: string): Promise<void>;
  /** Resolves when every write asked for so far has finished (failed ones included). */
  flush(): Promise<void>;
}

export interface PollRecord {
  /** Start of the last successful login, ms since the epoch. */
  lastLogin?: number;
  /** The UTC day (`YYYY-MM-DD`) `octets` counts for. */
  day?: string;
  /** Octets sent by RETR/TOP on `day`. */
  octets?: number;
}

/** Longest encoded name used as it is; longer ones are hashed (file names stop at 255 octets). */
const MAX_PLAIN_NAME = 200;

export function stateFileName(mailbox: string): string {
  const encoded = encodeURIComponent(mailbox).replaceAll('*', '%2A');
  const base = encoded.length <= MAX_PLAIN_NAME ? encoded : `sha256-${createHash('sha256').update(mailbox).digest('hex')}`;
  return `${base}.json`;
}

function parseRecord(text: string): PollRecord {
  const v = JSON.parse(text) as Record<string, unknown>;
  const r: PollRecord = {};
  if (typeof v['last_login'] === 'number' && Number.isFinite(v['last_login'])) r.lastLogin = v['last_login'];
  if (typeof v['day'] === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(v['day'])) r.day = v['day'];
  if (typeof v['octets'] === 'number' && Number.isSafeInteger(v['octets']) && v['octets'] >= 0) r.octets = v['octets'];
  return r;
}

export class PollState implements PollStore {
  private readonly records = new Map<string, PollRecord>();
  private readonly loading = new Map<string, Promise<PollRecord>>();
  /** The last write queued per maildrop, and whether one is queued but not started. */
  private readonly writes = new Map<string, Promise<void>>();
  private readonly queued = new Set<string>();
  private madeDir = false;

  /** The file's change stamp when this process last read or wrote it (refresh mode). */
  private readonly stamps = new Map<string, string>();
  /** Shared mode: octets this process counted and has not written yet, per maildrop, of one day. */
  private readonly unsaved = new Map<string, { day: string; octets: number }>();

  /** `dir`: where the records are kept; undefined keeps them in memory only. */
  constructor(readonly dir: string | undefined, private readonly opts: { readonly refresh?: boolean } = {}) {}

  /** The record of `mailbox`, read from disk the first time. Mutate it, then call `save`. */
  async get(mailbox: string): Promise<PollRecord> {
    const known = this.records.get(mailbox);
    if (known !== undefined) {
      if (this.opts.refresh === true && this.dir !== undefined) await this.refresh(mailbox, known);
      return known;
    }
    let pending = this.loading.get(mailbox);
    if (pending === undefined) {
      pending = this.read(mailbox).then((r) => {
        this.loading.delete(mailbox);
        const raced = this.records.get(mailbox);
        if (raced !== undefined) {
          if (this.shared) this.merge(mailbox, raced, r); // counted before the file was read
          return raced;
        }
        this.records.set(mailbox, r);
        return r;
      });
      this.loading.set(mailbox, pending);
    }
    return pending;
  }

  async claimLogin(mailbox: string, now: number, delayMs: number): Promise<LoginClaim> {
    return this.acrossProcesses(mailbox, async () => {
      const record = this.shared ? await this.sync(mailbox) : await this.get(mailbox);
      const previous = record.lastLogin;
      // A previous login less than the delay away counts on either side of `now`: one a little in
      // the future is a racing login whose clock was read after ours (another worker, another
      // node); only one further ahead than the delay is a clock set back, and does not count.
      if (previous !== undefined && Math.abs(now - previous) < delayMs) return { admitted: false, previous };
      record.lastLogin = now;
      // Across processes the claim is on disk before the lock is released (a failed write fails open).
      if (this.shared) await this.writeShared(mailbox).catch(() => undefined);
      return { admitted: true, previous };
    });
  }

  confirmLogin(mailbox: string): Promise<void> {
    return this.shared ? Promise.resolve() : this.save(mailbox); // shared: written by the claim
  }

  async cancelLogin(mailbox: string, claimed: number, previous: number | undefined): Promise<void> {
    await this.acrossProcesses(mailbox, async () => {
      const record = this.shared ? await this.sync(mailbox) : this.records.get(mailbox);
      if (record?.lastLogin !== claimed) return;
      record.lastLogin = previous;
      if (this.shared) await this.writeShared(mailbox);
    });
  }

  /** Records are shared with other processes (refresh mode with a directory): writes take the lock file. */
  private get shared(): boolean {
    return this.opts.refresh === true && this.dir !== undefined;
  }

  /** Shared mode, holding the lock: the record brought up to the file as it is now (`merge`). */
  private async sync(mailbox: string): Promise<PollRecord> {
    const known = await this.get(mailbox);
    this.merge(mailbox, known, await this.read(mailbox));
    return known;
  }

  /** Shared mode, holding the lock: writes the record; the octets counted so far are in it now. */
  private async writeShared(mailbox: string): Promise<void> {
    const counted = this.unsaved.get(mailbox);
    this.unsaved.delete(mailbox);
    try {
      await this.save(mailbox);
    } catch (err) {
      if (counted !== undefined) this.addUnsaved(mailbox, counted.day, counted.octets);
      throw err;
    }
  }

  private addUnsaved(mailbox: string, day: string, octets: number): void {
    const u = this.unsaved.get(mailbox);
    if (u === undefined || u.day < day) this.unsaved.set(mailbox, { day, octets });
    else if (u.day === day) u.octets += octets;
  }

  /** Runs `fn` holding the record's lock file when shared (see the module comment), else at once. */
  private async acrossProcesses<T>(mailbox: string, fn: () => Promise<T>): Promise<T> {
    if (!this.shared) return fn();
    await this.makeDir();
    const lock = await FileLock.acquireOrFail(join(this.dir!, `${stateFileName(mailbox)}.lock`), CLAIM_LOCK_WAIT_MS);
    try {
      return await fn();
    } finally {
      await lock.release();
    }
  }

  private async makeDir(): Promise<void> {
    if (this.madeDir) return;
    await mkdir(this.dir!, { recursive: true, mode: 0o700 });
    this.madeDir = true;
  }

  async downloaded(mailbox: string, day: string): Promise<number> {
    const record = await this.get(mailbox);
    return record.day === day ? (record.octets ?? 0) : 0;
  }

  countDownload(mailbox: string, day: string, octets: number): void {
    let record = this.records.get(mailbox);
    if (record === undefined) this.records.set(mailbox, (record = {}));
    if (record.day !== day) {
      record.day = day;
      record.octets = 0;
    }
    record.octets = (record.octets ?? 0) + octets;
    if (this.shared) this.addUnsaved(mailbox, day, octets);
  }

  saveDownload(mailbox: string): Promise<void> {
    if (!this.shared) return this.save(mailbox);
    if (!this.unsaved.has(mailbox)) return Promise.resolve();
    return this.acrossProcesses(mailbox, async () => {
      await this.sync(mailbox);
      await this.writeShared(mailbox);
    });
  }

  /**
   * Writes the current record of `mailbox` back. Writes of one file run in order; a save asked
   * for while another waits to start is folded into it. Rejects when the write failed.
   */
  save(mailbox: string): Promise<void> {
    if (this.dir === undefined) return Promise.resolve();
    const waiting = this.writes.get(mailbox);
    if (waiting !== undefined && this.queued.has(mailbox)) return waiting;
    this.queued.add(mailbox);
    const prev = waiting ?? Promise.resolve();
    const next = prev
      .catch(() => undefined)
      .then(() => {
        this.queued.delete(mailbox);
        return this.write(mailbox, this.records.get(mailbox) ?? {});
      });
    this.writes.set(mailbox, next);
    void next
      .catch(() => undefined)
      .finally(() => {
        if (this.writes.get(mailbox) === next) this.writes.delete(mailbox);
      });
    return next;
  }

  /** Resolves when every write asked for so far has finished (failed ones included). */
  async flush(): Promise<void> {
    while (this.writes.size > 0) await Promise.all([...this.writes.values()].map((w) => w.catch(() => undefined)));
  }

  private async stampOf(mailbox: string): Promise<string | undefined> {
    const s = await stat(join(this.dir!, stateFileName(mailbox))).catch(() => undefined);
    return s === undefined ? undefined : `${s.ino}:${s.mtimeMs}:${s.size}`;
  }

  /** Merges what another process wrote since this one last read or wrote the file. */
  private async refresh(mailbox: string, known: PollRecord): Promise<void> {
    const stamp = await this.stampOf(mailbox);
    if (stamp === undefined || stamp === this.stamps.get(mailbox)) return;
    this.merge(mailbox, known, await this.read(mailbox));
  }

  /**
   * Shared mode: what the file holds (`theirs`) merged into the known record: the later login,
   * and the file's count of its day plus what this process counted and has not written.
   */
  private merge(mailbox: string, known: PollRecord, theirs: PollRecord): void {
    if (theirs.lastLogin !== undefined && (known.lastLogin === undefined || theirs.lastLogin > known.lastLogin)) known.lastLogin = theirs.lastLogin;
    let day = theirs.day;
    let octets = theirs.octets ?? 0;
    const mine = this.unsaved.get(mailbox);
    if (mine !== undefined && (day === undefined || mine.day > day)) [day, octets] = [mine.day, mine.octets];
    else if (mine !== undefined && mine.day === day) octets += mine.octets;
    if (day === undefined || (known.day !== undefined && known.day > day)) return;
    known.day = day;
    known.octets = octets;
  }

  private async read(mailbox: string): Promise<PollRecord> {
    if (this.dir === undefined) return {};
    try {
      if (this.opts.refresh === true) this.stamps.set(mailbox, (await this.stampOf(mailbox)) ?? '');
      return parseRecord(await readFile(join(this.dir, stateFileName(mailbox)), 'utf8'));
    } catch {
      return {}; // missing, unreadable or torn: fail open (see the module comment)
    }
  }

  private async write(mailbox: string, r: PollRecord): Promise<void> {
    const dir = this.dir!;
    await this.makeDir();
    const file = join(dir, stateFileName(mailbox));
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const text = JSON.stringify({ last_login: r.lastLogin, day: r.day, octets: r.octets });
    try {
      await writeFile(tmp, `${text}\n`, { mode: 0o600 });
      await rename(tmp, file);
      if (this.opts.refresh === true) this.stamps.set(mailbox, (await this.stampOf(mailbox)) ?? '');
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  }
}

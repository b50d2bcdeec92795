/**
 * R-X17 (issue 15, "limits across nodes"): the shared state of R-X16 for several poplar nodes on one
 * PostgreSQL database (tables and functions in migrations/002-shared.sql). What crosses nodes:
 *
 * - the per-user session cap (`pop3.max_connections_per_user`, R-X9): one row per logged-in session
 *   in `shared_user_sessions`, taken by `poplar_acquire_user` under an advisory lock per user, so two
 *   nodes admitting the same user at once count each other;
 * - the failed-login counters per address and per user (R-X9) in `shared_penalties`
 *   (`poplar_login_failed` counts as LocalSharedState does), pruned once older than the window;
 * - exclusive claims (`claim`) in `shared_claims`;
 * - the key (`SharedState.key`) in `shared_key`: the first process to start draws it, the others read it.
 *
 * What stays with the node (`local`: a LocalSharedState in one process, the primary's over IPC with
 * workers): the total and per-address connection caps (each node counts its own; behind HAProxy
 * the balancer's `maxconn` bounds the whole, docs/scaling.md), and the login cache. The cache stays
 * per node because a miss only costs one password verification, while a shared cache would put MACs
 * of right passwords in the database beside their key, and add a query to every login.
 *
 * Leases: every process using this is one holder, a row in `shared_holders` renewed every third of
 * `leaseSeconds` by one UPDATE (batched: not a query per session). Sessions and claims count only
 * while their holder's lease runs, so a process that dies (SIGKILL, a cut cable) releases them
 * after at most `leaseSeconds`. Each renewal also removes expired holders (with what they held),
 * deletes what this holder failed to give back, and prunes stale penalty rows.
 *
 * Fail closed: every question runs with a timeout (SHARED_STATE_TIMEOUT_MS) and rejects with
 * SharedStateError when the database fails or is slow (a login then gets -ERR [SYS/TEMP]). Giving
 * back never throws: a release that cannot be sent is retried at the next renewal.
 *
 * Failed-password fingerprints are stored truncated to 24 bits: enough to tell a stale password
 * from a new guess (a new guess is taken for one of a user's 8 stale ones with odds of 8 in 2^24),
 * too little for an offline guess at the password from a stolen database, which also holds the key.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { SharedStateError } from '../../errors.js';
import { MAX_PENALTY_ENTRIES } from '../../shared/local-state.js';
import {
  SHARED_STATE_TIMEOUT_MS, UNLIMITED, type Admission, type CachedLogin, type LimitSettings, type PenaltySettings, type SharedSettings,
  type SharedState,
} from '../../shared/shared-state.js';
import type { Sql } from './client.js';

export interface PostgresSharedStateOptions {
  /** The process's pool (compose.ts postgresPool). */
  readonly sql: Sql;
  /** The node-local part: connection caps and the login cache. */
  readonly local: SharedState;
  /** Life of this holder's lease, renewed every third of it (`postgres.lease_seconds`). */
  readonly leaseSeconds: number;
  readonly settings?: Partial<SharedSettings>;
  /** How long a question may take before it fails closed, ms (default SHARED_STATE_TIMEOUT_MS). */
  readonly timeoutMs?: number;
  /** Penalty rows kept at most (oldest pruned first at each renewal). */
  readonly maxPenaltyEntries?: number;
}

/** Characters of the base64 fingerprint stored (4 characters: 24 bits). */
const FINGERPRINT_CHARS = 4;

const NO_PENALTY: PenaltySettings = { baseMs: 0, maxMs: 0, windowMs: 0 };

/** The cluster's key: the one in the database, or a new one stored there if none is yet. */
export async function sharedKey(sql: Sql): Promise<Buffer> {
  await sql`INSERT INTO shared_key (id, key) VALUES (true, ${randomBytes(32)}) ON CONFLICT (id) DO NOTHING`;
  const [row] = await sql<{ key: Buffer }[]>`SELECT key FROM shared_key WHERE id`;
  if (row === undefined) throw new SharedStateError('the shared key is missing from the database');
  return row.key;
}

/**
 * Removes a holder and everything it held (its sessions, its claims): a primary does this for a
 * worker that died, which otherwise would keep its users' slots until its lease lapsed.
 */
export async function releaseHolder(sql: Sql, holder: string): Promise<void> {
  await sql`DELETE FROM shared_holders WHERE id = ${holder}`;
}

export class PostgresSharedState implements SharedState {
  /** This process's holder id (its row in shared_holders). */
  readonly holder = randomUUID();
  readonly node = `${hostname()}:${process.pid}`;
  private readonly sql: Sql;
  private readonly local: SharedState;
  private readonly leaseSeconds: number;
  private readonly timeoutMs: number;
  private readonly maxPenaltyEntries: number;
  private maxPerUser: number;
  private penalty: PenaltySettings;
  /** Session tokens this process holds, by user (a stack each: releaseUser gives back the newest). */
  private readonly sessions = new Map<string, string[]>();
  private readonly claims = new Set<string>();
  /** Tokens and claims to delete that a failed or late query may have left in the database. */
  private readonly orphanTokens = new Set<string>();
  private readonly orphanClaims = new Set<string>();
  private renewer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private closed = false;

  private constructor(opts: PostgresSharedStateOptions, readonly key: Buffer) {
    this.sql = opts.sql;
    this.local = opts.local;
    this.leaseSeconds = opts.leaseSeconds;
    this.timeoutMs = opts.timeoutMs ?? SHARED_STATE_TIMEOUT_MS;
    this.maxPenaltyEntries = opts.maxPenaltyEntries ?? MAX_PENALTY_ENTRIES;
    this.maxPerUser = opts.settings?.limits?.maxConnectionsPerUser ?? UNLIMITED.maxConnectionsPerUser;
    this.penalty = opts.settings?.penalty ?? NO_PENALTY;
  }

  /** Reads (or stores) the key, registers this holder and starts renewing its lease. */
  static async open(opts: PostgresSharedStateOptions): Promise<PostgresSharedState> {
    const key = await sharedKey(opts.sql);
    const state = new PostgresSharedState(opts, key);
    await state.sql`INSERT INTO shared_holders (id, node, expires_at)
      VALUES (${state.holder}, ${state.node}, now() + make_interval(secs => ${state.leaseSeconds}))`;
    state.renewer = setInterval(() => void state.renew(), (state.leaseSeconds * 1000) / 3);
    state.renewer.unref();
    return state;
  }

  /** Runs one question with the timeout; any failure becomes a SharedStateError. */
  private ask<T>(what: string, run: () => Promise<T> & { cancel?: () => unknown }, onLate?: () => void): Promise<T> {
    if (this.closed) return Promise.reject(new SharedStateError('the shared state is closed'));
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const q = run();
      const timer = setTimeout(() => {
        done = true;
        onLate?.();
        void Promise.resolve(q.cancel?.()).catch(() => undefined);
        reject(new SharedStateError(`the database did not answer ${what} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      q.then(
        (v) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          onLate?.();
          reject(new SharedStateError(`the shared state in the database failed (${what}): ${e instanceof Error ? e.message : String(e)}`));
        },
      );
    });
  }

  // ---- node-local: connection caps and the login cache

  admit(ip: string): Promise<Admission> {
    return this.local.admit(ip);
  }

  release(ip: string): void {
    this.local.release(ip);
  }

  cachedLogin(user: string, now: number): Promise<CachedLogin | undefined> {
    return this.local.cachedLogin(user, now);
  }

  rememberLogin(user: string, entry: CachedLogin): void {
    this.local.rememberLogin(user, entry);
  }

  update(limits: LimitSettings): void {
    this.maxPerUser = limits.maxConnectionsPerUser;
    this.local.update(limits);
  }

  configure(settings: SharedSettings): void {
    this.maxPerUser = settings.limits.maxConnectionsPerUser;
    this.penalty = settings.penalty;
    this.local.configure(settings);
  }

  // ---- the per-user cap, across nodes

  async acquireUser(user: string): Promise<boolean> {
    const token = randomUUID();
    const [row] = await this.ask('acquireUser', () => this.sql<{ ok: boolean }[]>`
      SELECT poplar_acquire_user(${this.holder}, ${this.node}, ${this.leaseSeconds}, ${token}, ${user}, ${this.maxPerUser}) AS ok`,
    () => this.orphanTokens.add(token));
    if (row?.ok !== true) return false;
    const list = this.sessions.get(user);
    if (list === undefined) this.sessions.set(user, [token]);
    else list.push(token);
    return true;
  }

  releaseUser(user: string): void {
    const list = this.sessions.get(user);
    const token = list?.pop();
    if (token === undefined) return;
    if (list!.length === 0) this.sessions.delete(user);
    if (this.closed) return;
    this.sql`DELETE FROM shared_user_sessions WHERE token = ${token}`.catch(() => this.orphanTokens.add(token));
  }

  // ---- failed-login penalties, across nodes

  async penaltyNow(ip: string, user: string | undefined, now: number): Promise<number> {
    if (this.penalty.baseMs <= 0) return 0;
    const [row] = await this.ask('penaltyNow', () => this.sql<{ n: number | null }[]>`
      SELECT max(failures)::int AS n FROM shared_penalties
      WHERE ((kind = 'a' AND name = ${ip}) OR (kind = 'u' AND name = ${user ?? null}))
        AND ${now}::bigint - last_ms <= ${this.penalty.windowMs}::bigint`);
    return this.delay(row?.n ?? 0);
  }

  async loginFailed(ip: string, user: string | undefined, fingerprint: string | undefined, now: number): Promise<number> {
    if (this.penalty.baseMs <= 0) return 0;
    const fp = fingerprint === undefined ? null : fingerprint.slice(0, FINGERPRINT_CHARS);
    const [row] = await this.ask('loginFailed', () => this.sql<{ n: number }[]>`
      SELECT poplar_login_failed(${ip}, ${user ?? null}, ${fp}, ${now}::bigint, ${this.penalty.windowMs}::bigint) AS n`);
    return this.delay(row?.n ?? 0);
  }

  loginSucceeded(user: string): void {
    if (this.closed) return;
    // Lost if the database cannot be reached: the counter then fades with its window.
    this.sql`DELETE FROM shared_penalties WHERE kind = 'u' AND name = ${user}`.catch(() => undefined);
  }

  private delay(failures: number): number {
    const { baseMs, maxMs } = this.penalty;
    if (failures <= 0 || baseMs <= 0) return 0;
    return Math.min(maxMs, baseMs * 2 ** Math.min(failures - 1, 30));
  }

  // ---- exclusive claims, across nodes

  async claim(name: string): Promise<boolean> {
    const rows = await this.ask('claim', () => this.sql`
      INSERT INTO shared_claims AS c (name, holder) VALUES (${name}, ${this.holder})
      ON CONFLICT (name) DO UPDATE SET holder = excluded.holder
      WHERE NOT EXISTS (SELECT 1 FROM shared_holders h WHERE h.id = c.holder AND h.expires_at > now())
      RETURNING 1`, () => this.orphanClaims.add(name));
    if (rows.length === 0) return false;
    this.claims.add(name);
    return true;
  }

  unclaim(name: string): void {
    if (!this.claims.delete(name) || this.closed) return;
    this.sql`DELETE FROM shared_claims WHERE name = ${name} AND holder = ${this.holder}`.catch(() => this.orphanClaims.add(name));
  }

  // ---- the lease

  /** Sessions this process holds now (all users). */
  get heldSessions(): number {
    let n = 0;
    for (const list of this.sessions.values()) n += list.length;
    return n;
  }

  /** One renewal now (the timer runs it every third of the lease); never rejects. */
  renew(): Promise<void> {
    this.renewing ??= this.renewOnce().catch(() => undefined).finally(() => (this.renewing = undefined));
    return this.renewing;
  }

  private async renewOnce(): Promise<void> {
    if (this.closed) return;
    const sql = this.sql;
    const lease = this.leaseSeconds;
    const renewed = await sql`UPDATE shared_holders SET expires_at = now() + make_interval(secs => ${lease}) WHERE id = ${this.holder} RETURNING 1`;
    if (renewed.length === 0) {
      // Cut off longer than the lease: another holder removed this one. Register again with what it holds.
      await sql`INSERT INTO shared_holders (id, node, expires_at) VALUES (${this.holder}, ${this.node}, now() + make_interval(secs => ${lease}))
        ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at`;
      const users = [...this.sessions].flatMap(([u, tokens]) => tokens.map(() => u));
      const tokens = [...this.sessions.values()].flat();
      if (tokens.length > 0) {
        await sql`INSERT INTO shared_user_sessions (token, holder, user_name)
          SELECT t, ${this.holder}, u FROM unnest(${tokens}::uuid[], ${users}::text[]) AS x(t, u) ON CONFLICT (token) DO NOTHING`;
      }
      if (this.claims.size > 0) {
        await sql`INSERT INTO shared_claims (name, holder) SELECT n, ${this.holder} FROM unnest(${[...this.claims]}::text[]) AS x(n)
          ON CONFLICT (name) DO NOTHING`;
      }
    }
    if (this.orphanTokens.size > 0) {
      const tokens = [...this.orphanTokens];
      await sql`DELETE FROM shared_user_sessions WHERE token = ANY(${tokens}::uuid[])`;
      for (const t of tokens) this.orphanTokens.delete(t);
    }
    if (this.orphanClaims.size > 0) {
      const names = [...this.orphanClaims].filter((n) => !this.claims.has(n));
      await sql`DELETE FROM shared_claims WHERE name = ANY(${names}::text[]) AND holder = ${this.holder}`;
      this.orphanClaims.clear();
    }
    await sql`DELETE FROM shared_holders WHERE expires_at < now()`;
    if (this.penalty.windowMs > 0) await sql`DELETE FROM shared_penalties WHERE last_ms < ${Date.now() - this.penalty.windowMs}::bigint`;
    await sql`DELETE FROM shared_penalties WHERE last_ms < (
      SELECT last_ms FROM shared_penalties ORDER BY last_ms DESC OFFSET ${this.maxPenaltyEntries} LIMIT 1)`;
  }

  /** Stops renewing and gives back everything this process holds (its holder row, and with it its sessions and claims). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.renewer !== undefined) clearInterval(this.renewer);
    await this.renewing;
    this.sessions.clear();
    this.claims.clear();
    await this.sql`DELETE FROM shared_holders WHERE id = ${this.holder}`.catch(() => undefined);
  }
}

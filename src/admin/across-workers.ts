/**
 * The admin API's sources with `server.workers` > 1 (R-X21, R-X16). The primary serves the admin
 * listener; what it reads of the running server is in the workers, so each source asks them over
 * IPC (`AskWorkers`, given by cli/serve-primary.ts over its PrimaryChannel) and merges:
 *
 * - sessions: every worker's list, each session with its `worker`; a session id starts with its
 *   worker's id (`sessionIdPrefix`, put there by the worker's listener), so ids are unique across
 *   workers and ending one asks only the worker that holds it;
 * - failed logins: every worker's ring of recent failures (auth/throttle.ts), newest first; the
 *   penalty's delay comes from the primary's shared state (the counters every worker's delay is
 *   read from), its failure count from the merged ring, as LoginThrottle.penalty counts its own;
 * - activity: every worker's per-minute history summed minute by minute, delivery totals summed.
 *
 * A worker that does not answer in time: a read answers with the other workers' part, marked
 * partial (sources.ts `markPartial`, the route adds `partial: true`); when every worker asked
 * failed, or the worker holding a session to end does not answer, the source throws an
 * UnavailableError (503 UNAVAILABLE), and that worker, when it gets the request late, does not
 * end the session. A worker that exits takes its sessions, its ring and its
 * counters with it: the totals are those of the workers alive now.
 *
 * `workerAnswers` is the worker's side of the same requests (cli/serve.ts registers it).
 */
import { countRecentFailures, type Penalty, type RecentFailure } from '../auth/throttle.js';
import { UnavailableError } from '../errors.js';
import { HISTORY_MINUTES, SERIES, type CounterHistory, type DeliveryTotals, type HistoryView, type SeriesName } from './history.js';
import { markPartial, type Activity, type FailedLogins, type LiveSessions, type SessionView } from './sources.js';

/** The requests the primary's admin listener sends its workers. */
export const WORKER_REQUESTS = ['sessions', 'end-session', 'failures', 'activity'] as const;
export type WorkerRequest = (typeof WORKER_REQUESTS)[number];

/** Each asked worker's answer or failure, by worker id. */
export type Answers = ReadonlyMap<number, PromiseSettledResult<unknown>>;

/** Asks every ready worker, or only worker `only` (none when it is not ready). */
export type AskWorkers = (kind: WorkerRequest, body: unknown, only?: number) => Promise<Answers>;

/** What a worker answers to 'activity': null when it keeps no history (started without admin.listen). */
export interface WorkerActivity {
  readonly history: HistoryView;
  readonly deliveries: DeliveryTotals;
}

const MINUTE_S = 60;

/** The start of every session id of worker `worker` (the listener adds a random part and a counter). */
export function sessionIdPrefix(worker: number): string {
  return `${worker}-`;
}

/** The worker whose listener made session id `id`; undefined for an id no worker makes. */
export function workerOfSession(id: string): number | undefined {
  const m = /^([1-9]\d{0,8})-/.exec(id);
  return m === null ? undefined : Number(m[1]);
}

/** The fulfilled answers; throws when every worker asked failed (nothing to show). */
function gather<T>(answers: Answers): { values: Array<[number, T]>; partial: boolean } {
  const values: Array<[number, T]> = [];
  let failure: { reason: unknown } | undefined;
  for (const [worker, a] of answers) {
    if (a.status === 'fulfilled') values.push([worker, a.value as T]);
    else failure ??= { reason: a.reason };
  }
  if (failure !== undefined && values.length === 0) throw new UnavailableError('every worker', failure.reason);
  return { values, partial: failure !== undefined };
}

const marked = <T extends object>(value: T, partial: boolean): T => (partial ? markPartial(value) : value);

/**
 * `timeoutMs`: how long `ask` waits for an answer. An end-session request carries its deadline
 * (`until`); a worker that gets it later (it was stopped, or busy) does not carry it out, so a
 * 503 means the session was not ended.
 */
export function acrossWorkersSessions(ask: AskWorkers, timeoutMs: number, now: () => number = Date.now): LiveSessions {
  return {
    async list() {
      const { values, partial } = gather<SessionView[]>(await ask('sessions', null));
      return marked(values.flatMap(([worker, list]) => list.map((s) => ({ ...s, worker }))), partial);
    },
    async end(id) {
      const worker = workerOfSession(id);
      if (worker === undefined) return false;
      const a = (await ask('end-session', { id, until: now() + timeoutMs }, worker)).get(worker);
      // No such worker now: its sessions ended with it.
      if (a === undefined) return false;
      if (a.status === 'rejected') throw new UnavailableError(`worker ${worker}`, a.reason);
      return a.value === true;
    },
  };
}

export function acrossWorkersFailures(
  ask: AskWorkers,
  opts: {
    /** The delay the next failure of this address or user gets now, from the primary's shared state (or the database's, R-X17), ms. */
    readonly delayMs: (kind: 'address' | 'user', key: string, now: number) => number | Promise<number>;
    /** `auth.failure_window` now, ms (it follows a reload). */
    readonly windowMs: () => number;
    readonly now?: () => number;
  },
): FailedLogins {
  const now = opts.now ?? Date.now;
  // One question to the workers at a time: a page of penalties shares the answer.
  let asking: Promise<RecentFailure[]> | undefined;
  const recent = (): Promise<RecentFailure[]> => {
    asking ??= (async () => {
      const { values, partial } = gather<RecentFailure[]>(await ask('failures', null));
      return marked(values.flatMap(([, ring]) => ring).sort((x, y) => y.at - x.at), partial);
    })().finally(() => {
      asking = undefined;
    });
    return asking;
  };
  return {
    recent,
    async penalty(kind, key): Promise<Penalty | undefined> {
      const t = now();
      const delayMs = await opts.delayMs(kind, key, t);
      const failures = countRecentFailures(await recent(), kind, key, t, opts.windowMs());
      return delayMs === 0 && failures === 0 ? undefined : { failures, delayMs };
    },
  };
}

export function acrossWorkersActivity(ask: AskWorkers, now: () => number = Date.now): Activity {
  const answers = async (): Promise<{ views: WorkerActivity[]; partial: boolean }> => {
    const { values, partial } = gather<WorkerActivity | null>(await ask('activity', null));
    return { views: values.flatMap(([, v]) => (v === null ? [] : [v])), partial };
  };
  return {
    async history() {
      const { views, partial } = await answers();
      return marked(sumHistories(views.map((v) => v.history), now()), partial);
    },
    async deliveries() {
      const { views, partial } = await answers();
      return marked(sumDeliveries(views.map((v) => v.deliveries), now()), partial);
    },
  };
}

/** The workers' histories added minute by minute, over the last HISTORY_MINUTES minutes at `nowMs`. */
export function sumHistories(views: readonly HistoryView[], nowMs: number): HistoryView {
  const start = (Math.floor(nowMs / 1000 / MINUTE_S) - HISTORY_MINUTES + 1) * MINUTE_S;
  const series = Object.fromEntries(SERIES.map((name) => [name, new Array<number>(HISTORY_MINUTES).fill(0)])) as Record<SeriesName, number[]>;
  for (const v of views) {
    for (const name of SERIES) {
      v.series[name].forEach((count, i) => {
        // A worker that answered in the minute before: its minutes line up one slot earlier.
        const slot = (v.start + i * v.step - start) / MINUTE_S;
        if (Number.isInteger(slot) && slot >= 0 && slot < HISTORY_MINUTES) series[name][slot]! += count;
      });
    }
  }
  return { start, step: MINUTE_S, series };
}

/** The workers' delivery totals added; `since` is the earliest worker's start (now when none answered). */
export function sumDeliveries(totals: readonly DeliveryTotals[], nowMs: number): DeliveryTotals {
  const sum = { delivered: 0, rejected: 0, failed: 0, bytes: 0 };
  const refused: Record<string, number> = {};
  let since: string | undefined;
  for (const t of totals) {
    if (since === undefined || t.since < since) since = t.since;
    sum.delivered += t.delivered;
    sum.rejected += t.rejected;
    sum.failed += t.failed;
    sum.bytes += t.bytes;
    for (const [reason, n] of Object.entries(t.refused)) refused[reason] = (refused[reason] ?? 0) + n;
  }
  return { since: since ?? new Date(nowMs).toISOString(), ...sum, refused };
}

/** A worker's answers to WORKER_REQUESTS, from its own sessions, failed-login ring and history. */
export function workerAnswers(
  sessions: LiveSessions,
  recentFailures: () => RecentFailure[],
  history: CounterHistory | undefined,
  now: () => number = Date.now,
): Record<WorkerRequest, (body: unknown) => unknown> {
  return {
    sessions: () => sessions.list(),
    'end-session': (body) => {
      const { id, until } = (body ?? {}) as { id?: unknown; until?: unknown };
      // Past its deadline the primary has answered 503 (not ended): so it stays.
      if (typeof id !== 'string' || typeof until !== 'number' || now() > until) return false;
      return sessions.end(id);
    },
    failures: () => recentFailures(),
    activity: (): WorkerActivity | null => (history === undefined ? null : { history: history.view(), deliveries: history.deliveries() }),
  };
}

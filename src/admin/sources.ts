/**
 * What the admin API reads from the running server, behind three small interfaces (R-X21), so the
 * same routes serve one process or many: the in-process versions here read the server's own
 * sessions, failed-login counters and activity counters; a multi-process server gives the API versions that ask
 * every worker and merge the answers.
 */
import type { LoginThrottle, Penalty, RecentFailure } from '../auth/throttle.js';
import type { OpenSession } from '../server.js';
import type { CounterHistory, DeliveryTotals, HistoryView } from './history.js';

/** One live POP3 session as the API returns it. */
export interface SessionView {
  readonly id: string;
  /** Who logged in; null before login. */
  readonly user: string | null;
  /** The open maildrop (another user's when granted, R-K3); null before login. */
  readonly mailbox: string | null;
  readonly address: string;
  /** When the connection was accepted, ISO 8601. */
  readonly since: string;
  readonly state: 'authorization' | 'transaction' | 'update';
  readonly bytesSent: number;
  readonly tls: boolean;
  /** R-X16: the worker process that holds it; absent with one process. */
  readonly worker?: number;
}

export interface LiveSessions {
  list(): Promise<SessionView[]>;
  /** Ends the session without UPDATE (R-K4); false when no session has this id. */
  end(id: string): Promise<boolean>;
}

export interface FailedLogins {
  /** Recent failed logins, newest first (a bounded ring: auth/throttle.ts RECENT_FAILURES). */
  recent(): Promise<RecentFailure[]>;
  /** The live failed-login counter of one address or user; undefined when none. */
  penalty(kind: 'address' | 'user', key: string): Promise<Penalty | undefined>;
}

/** The per-minute history and delivery totals; a multi-process server sums its workers'. */
export interface Activity {
  history(): Promise<HistoryView>;
  deliveries(): Promise<DeliveryTotals>;
}

const partialAnswers = new WeakSet<object>();

/**
 * Marks an answer that lacks some worker's part (a worker that did not answer in time,
 * across-workers.ts): the route adds `partial: true` to what it returns.
 */
export function markPartial<T extends object>(answer: T): T {
  partialAnswers.add(answer);
  return answer;
}

export function isPartial(answer: object): boolean {
  return partialAnswers.has(answer);
}

export function sessionView(s: OpenSession): SessionView {
  return {
    id: s.id,
    user: s.user ?? null,
    mailbox: s.mailbox ?? null,
    address: s.remoteAddress,
    since: new Date(s.since).toISOString(),
    state: s.phase,
    bytesSent: s.bytesOut,
    tls: s.secure,
  };
}

/** The sessions of this process (server.ts `openSessions`). */
export function inProcessSessions(server: { openSessions(): OpenSession[] }): LiveSessions {
  return {
    list: async () => server.openSessions().map(sessionView),
    async end(id) {
      const s = server.openSessions().find((o) => o.id === id);
      s?.end();
      return s !== undefined;
    },
  };
}

/** The failed logins of this process's LoginThrottle. */
export function inProcessFailures(throttle: LoginThrottle): FailedLogins {
  return {
    recent: async () => throttle.recent(),
    penalty: (kind, key) => throttle.penalty(kind, key),
  };
}

/** The counters this process saw (history.ts). */
export function inProcessActivity(counters: CounterHistory): Activity {
  return { history: async () => counters.view(), deliveries: async () => counters.deliveries() };
}

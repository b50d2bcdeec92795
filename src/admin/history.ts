/**
 * The counters behind the console's charts and the API's delivery counts (R-X21): logins, failed
 * logins and deliveries per minute over the last HISTORY_MINUTES minutes (a ring of buckets), and
 * delivery totals since the start, read from the diagnostics channels the metrics use
 * (observability/channels.ts), so they count whether or not `server.metrics_listen` is on.
 */
import type { Channel } from 'node:diagnostics_channel';
import { channels, type DeliveryEvent, type DeliveryRefusedEvent, type LoginEvent } from '../observability/channels.js';

export const HISTORY_MINUTES = 60;
const MINUTE_MS = 60_000;

export const SERIES = ['logins', 'failedLogins', 'deliveries'] as const;
export type SeriesName = (typeof SERIES)[number];

export interface HistoryView {
  /** Start of the oldest minute, seconds since the epoch; one value per minute from there. */
  readonly start: number;
  readonly step: number;
  readonly series: Record<SeriesName, number[]>;
}

export interface DeliveryTotals {
  readonly since: string;
  readonly delivered: number;
  readonly rejected: number;
  readonly failed: number;
  readonly bytes: number;
  /** Refusals per recipient, by reason (unknown_user, over_quota, too_big, temp_failure). */
  readonly refused: Record<string, number>;
}

export class CounterHistory {
  /** minute number (ms / 60000) of each slot, and its counts */
  private readonly minutes = new Array<number>(HISTORY_MINUTES).fill(-1);
  private readonly counts: Record<SeriesName, number[]> = {
    logins: new Array<number>(HISTORY_MINUTES).fill(0),
    failedLogins: new Array<number>(HISTORY_MINUTES).fill(0),
    deliveries: new Array<number>(HISTORY_MINUTES).fill(0),
  };
  private readonly totals = { delivered: 0, rejected: 0, failed: 0, bytes: 0 };
  private readonly refused: Record<string, number> = {};
  private readonly started: Date;
  private readonly unsubscribe: Array<() => void> = [];

  constructor(private readonly now: () => number = Date.now) {
    this.started = new Date(now());
    this.on(channels.login, (e: LoginEvent) => this.add(e.result === 'success' ? 'logins' : 'failedLogins'));
    this.on(channels.delivery, (e: DeliveryEvent) => {
      this.totals[e.result]++;
      if (e.result === 'delivered') {
        this.totals.bytes += e.bytes;
        this.add('deliveries');
      }
    });
    this.on(channels.deliveryRefused, (e: DeliveryRefusedEvent) => {
      this.refused[e.reason] = (this.refused[e.reason] ?? 0) + e.count;
    });
  }

  /** The last HISTORY_MINUTES minutes, oldest first, the current minute last. */
  view(): HistoryView {
    const current = Math.floor(this.now() / MINUTE_MS);
    const series = { logins: [] as number[], failedLogins: [] as number[], deliveries: [] as number[] };
    for (let m = current - HISTORY_MINUTES + 1; m <= current; m++) {
      const slot = m % HISTORY_MINUTES;
      for (const name of SERIES) series[name].push(this.minutes[slot] === m ? this.counts[name][slot]! : 0);
    }
    return { start: (current - HISTORY_MINUTES + 1) * 60, step: 60, series };
  }

  deliveries(): DeliveryTotals {
    return { since: this.started.toISOString(), ...this.totals, refused: { ...this.refused } };
  }

  close(): void {
    for (const u of this.unsubscribe) u();
    this.unsubscribe.length = 0;
  }

  private add(name: SeriesName): void {
    const m = Math.floor(this.now() / MINUTE_MS);
    const slot = m % HISTORY_MINUTES;
    if (this.minutes[slot] !== m) {
      this.minutes[slot] = m;
      for (const s of SERIES) this.counts[s][slot] = 0;
    }
    this.counts[name][slot]!++;
  }

  private on<T>(channel: Channel, f: (m: T) => void): void {
    const handler = (m: unknown): void => f(m as T);
    channel.subscribe(handler);
    this.unsubscribe.push(() => channel.unsubscribe(handler));
  }
}

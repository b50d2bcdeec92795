/**
 * Every Prometheus metric poplar exports, defined here and nowhere else (R-X13). The values come
 * from the diagnostics channels (channels.ts), so no other module imports prom-client.
 */
import type { Channel } from 'node:diagnostics_channel';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { channels, DELIVERY_PROTOCOLS, DELIVERY_REFUSAL_REASONS, type CommandEvent, type DeliveryEvent, type DeliveryRefusedEvent, type ErrorEvent, type LoginEvent, type RefusedEvent, type SessionCloseEvent, type SessionOpenEvent } from './channels.js';

/** The primary's view of its workers (cli/serve-primary.ts). */
export interface WorkerStats {
  readonly live: number;
  readonly restarts: number;
  connectionsByWorker(): Map<number, number>;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly unsubscribe: Array<() => void> = [];

  /**
   * `beforeScrape` runs before each scrape; it publishes on the channels what other processes
   * recorded (RefusalTally.publishNew for `poplar deliver`).
   */
  constructor(opts: { readonly beforeScrape?: () => void; readonly workers?: WorkerStats } = {}) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'poplar_' });
    // prom-client names these gauges `_total`, which Prometheus reserves for counters (promtool
    // rejects them); the event-loop and memory metrics that remain say the same things.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(`poplar_${name}`);
    }
    const active = new Gauge({ name: 'poplar_sessions_active', help: 'POP3 sessions open now.', registers });
    const sessions = new Counter({ name: 'poplar_sessions_total', help: 'POP3 sessions ended, by how they ended.', labelNames: ['reason'], registers });
    const opened = new Counter({ name: 'poplar_sessions_opened_total', help: 'POP3 connections accepted, by transport.', labelNames: ['tls'], registers });
    const logins = new Counter({ name: 'poplar_logins_total', help: 'Login attempts by result and mechanism.', labelNames: ['result', 'mechanism'], registers });
    const commands = new Counter({ name: 'poplar_commands_total', help: 'POP3 commands by keyword and outcome.', labelNames: ['command', 'result'], registers });
    const latency = new Histogram({
      name: 'poplar_command_duration_seconds',
      help: 'Time from a command line to its complete reply, by keyword.',
      labelNames: ['command'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });
    const bytesOut = new Counter({ name: 'poplar_bytes_sent_total', help: 'Octets sent to POP3 clients.', registers });
    const retrieved = new Counter({ name: 'poplar_messages_retrieved_total', help: 'Messages sent whole by RETR.', registers });
    const deleted = new Counter({ name: 'poplar_messages_deleted_total', help: 'Messages marked deleted by DELE in sessions that ended.', registers });
    const deliveries = new Counter({ name: 'poplar_deliveries_total', help: 'Message deliveries by result.', labelNames: ['result'], registers });
    const deliveryBytes = new Counter({ name: 'poplar_delivered_bytes_total', help: 'Octets of messages delivered.', registers });
    const deliveryLatency = new Histogram({
      name: 'poplar_delivery_duration_seconds',
      help: 'Time to store one delivered message durably.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers,
    });
    const beforeScrape = opts.beforeScrape;
    const deliveriesRefused = new Counter({
      name: 'poplar_deliveries_refused_total',
      help: 'Deliveries refused, one per recipient: by LMTP or poplar deliver, and why (unknown_user, over_quota, too_big, temp_failure).',
      labelNames: ['protocol', 'reason'],
      registers,
      ...(beforeScrape === undefined ? {} : { collect: () => beforeScrape() }),
    });
    for (const protocol of DELIVERY_PROTOCOLS) for (const reason of DELIVERY_REFUSAL_REASONS) deliveriesRefused.inc({ protocol, reason }, 0);
    const refused = new Counter({ name: 'poplar_connections_refused_total', help: 'Connections refused by a limit, by reason.', labelNames: ['reason'], registers });
    const errors = new Counter({ name: 'poplar_errors_total', help: 'Internal errors by kind.', labelNames: ['kind'], registers });

    const workers = opts.workers;
    if (workers !== undefined) {
      // R-X16, in the primary only: what the sum over workers hides.
      new Gauge({ name: 'poplar_workers', help: 'Worker processes serving connections now.', registers, collect() {
        this.set(workers.live);
      } });
      new Counter({ name: 'poplar_worker_restarts_total', help: 'Workers replaced after they died.', registers, collect() {
        this.reset();
        this.inc(workers.restarts);
      } });
      new Gauge({ name: 'poplar_worker_connections', help: 'Connections each worker holds now, by worker id.', labelNames: ['worker'], registers, collect() {
        this.reset();
        for (const [id, n] of workers.connectionsByWorker()) this.set({ worker: String(id) }, n);
      } });
    }
    this.on(channels.sessionOpen, (e: SessionOpenEvent) => {
      active.inc();
      opened.inc({ tls: String(e.tls) });
    });
    this.on(channels.sessionClose, (e: SessionCloseEvent) => {
      active.dec();
      sessions.inc({ reason: e.reason });
      bytesOut.inc(e.bytesOut);
      retrieved.inc(e.retr);
      deleted.inc(e.dele);
    });
    this.on(channels.login, (e: LoginEvent) => logins.inc({ result: e.result, mechanism: e.mechanism }));
    this.on(channels.command, (e: CommandEvent) => {
      commands.inc({ command: e.command, result: e.ok ? 'ok' : 'err' });
      latency.observe({ command: e.command }, e.seconds);
    });
    this.on(channels.delivery, (e: DeliveryEvent) => {
      deliveries.inc({ result: e.result });
      if (e.result === 'delivered') {
        deliveryBytes.inc(e.bytes);
        deliveryLatency.observe(e.seconds);
      }
    });
    this.on(channels.deliveryRefused, (e: DeliveryRefusedEvent) => deliveriesRefused.inc({ protocol: e.protocol, reason: e.reason }, e.count));
    this.on(channels.refused, (e: RefusedEvent) => refused.inc({ reason: e.reason }));
    this.on(channels.error, (e: ErrorEvent) => errors.inc({ kind: e.kind }));
  }

  private on<T>(channel: Channel, f: (m: T) => void): void {
    const handler = (m: unknown): void => f(m as T);
    channel.subscribe(handler);
    this.unsubscribe.push(() => channel.unsubscribe(handler));
  }

  /** This process's values in the form `aggregate` merges (sent by a worker to the primary). */
  snapshot(): Promise<unknown> {
    return this.registry.getMetricsAsJSON();
  }

  /**
   * R-X16: the whole server's metrics in Prometheus text, as the primary shows them: its own and
   * every worker's `snapshot()`, merged by prom-client's AggregatorRegistry (counters, histograms
   * and session gauges summed; process metrics by each metric's own rule).
   */
  async aggregate(workers: readonly unknown[]): Promise<string> {
    const all = [await this.registry.getMetricsAsJSON(), ...workers] as Parameters<typeof AggregatorRegistry.aggregate>[0];
    return AggregatorRegistry.aggregate(all).metrics();
  }

  /** Stops listening to the channels (for tests and shutdown). */
  close(): void {
    for (const u of this.unsubscribe) u();
    this.unsubscribe.length = 0;
  }
}

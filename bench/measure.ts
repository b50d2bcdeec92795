/**
 * What every scenario reports: its figures, the wall time, the bench client's own CPU
 * (process.cpuUsage: the client shares the machine with the server) and, given the server's pid,
 * the server tree's CPU time (proc.ts). Also the concurrent loop every load scenario runs.
 */
import { treeCpuSeconds } from './proc.js';

export interface Metric {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly better: 'higher' | 'lower';
}

export interface Result {
  readonly scenario: string;
  readonly metrics: Metric[];
  readonly wallS: number;
  readonly clientCpuS: number;
  /** Undefined without --server-pid. */
  readonly serverCpuS: number | undefined;
  /** The database tree's CPU seconds (--db-pid, poplar on PostgreSQL); absent without it. */
  readonly dbCpuS?: number;
  /** Items checked byte for byte or count for count (messages, listings, replies). */
  readonly verified: number;
  readonly notes: string[];
}

export interface Span {
  readonly wallS: number;
  readonly clientCpuS: number;
  readonly serverCpuS: number | undefined;
  readonly dbCpuS?: number;
}

/** Starts measuring now; the returned function ends the span. `dbPid`: a database's postmaster, measured too. */
export function startSpan(serverPid: number | undefined, dbPid?: number): () => Span {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const s0 = serverPid === undefined ? 0 : treeCpuSeconds(serverPid);
  const d0 = dbPid === undefined ? 0 : treeCpuSeconds(dbPid);
  return () => {
    const c = process.cpuUsage(c0);
    return {
      wallS: (performance.now() - t0) / 1000,
      clientCpuS: (c.user + c.system) / 1e6,
      serverCpuS: serverPid === undefined ? undefined : treeCpuSeconds(serverPid) - s0,
      ...(dbPid === undefined ? {} : { dbCpuS: treeCpuSeconds(dbPid) - d0 }),
    };
  };
}

/** `name`: the database tree's CPU per unit of work (`per` units done), when the span measured it. */
export function dbCpuMetric(s: Span, name: string, per: number, scale: number, unit: string): Metric[] {
  return s.dbCpuS === undefined || per === 0 ? [] : [{ name, value: (s.dbCpuS * scale) / per, unit, better: 'lower' }];
}

/**
 * Runs `step(worker, iteration)` in `clients` concurrent loops until `durationS` has passed.
 * The first error stops every loop and is rethrown: a failed or unverified step is never
 * counted as work done. Returns the number of completed steps.
 */
export async function runLoops(
  clients: number,
  durationS: number,
  step: (worker: number, iteration: number) => Promise<void>,
): Promise<number> {
  const deadline = performance.now() + durationS * 1000;
  let done = 0;
  let failure: unknown;
  const loop = async (w: number): Promise<void> => {
    for (let i = 0; failure === undefined && performance.now() < deadline; i++) {
      try {
        await step(w, i);
        done++;
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, w) => loop(w)));
  if (failure !== undefined) throw failure;
  return done;
}

/** The p-th percentile (0–100) of the values, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const median = (values: readonly number[]): number => percentile(values, 50);

/** Runs `fn` with up to `limit` at a time over 0..n-1. */
export async function forEachLimited(n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < n) {
      const i = next++;
      await fn(i).catch((err: unknown) => (failure ??= err));
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
  if (failure !== undefined) throw failure;
}

/** Human-readable one-line-per-metric summary. */
export function formatResult(r: Result): string {
  const lines = [`${r.scenario}: ${r.verified} items verified, ${r.wallS.toFixed(1)} s wall`];
  for (const m of r.metrics) lines.push(`  ${m.name.padEnd(34)} ${fmt(m.value).padStart(12)} ${m.unit}`);
  // The client shares the machine with the server: its share of a core says when it, not the
  // server, may be what limits a figure.
  const share = r.wallS > 0 ? r.clientCpuS / r.wallS : 0;
  const ofServer = r.serverCpuS === undefined || r.serverCpuS === 0 ? '' : `, ${fmt((100 * r.clientCpuS) / r.serverCpuS)}% of the server's`;
  lines.push(`  ${'bench client CPU'.padEnd(34)} ${fmt(r.clientCpuS).padStart(12)} s (${fmt(share)} of a core${ofServer})`);
  if (r.serverCpuS !== undefined) lines.push(`  ${'server CPU'.padEnd(34)} ${fmt(r.serverCpuS).padStart(12)} s`);
  for (const n of r.notes) lines.push(`  note: ${n}`);
  return lines.join('\n');
}

export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

/**
 * The comparison report: a markdown table (both figures, ratio poplar/Dovecot, the issue's
 * target and whether it is met) and an SVG bar chart of each metric's advantage factor on a log
 * scale (>1: poplar better, whichever direction the metric counts).
 */
import type { Metric, Result } from '../measure.js';
import { fmt } from '../measure.js';

/** The targets of issue 6, as ratios poplar/Dovecot (or, with `absolute`, poplar's own figure). */
export const TARGETS: Record<string, { op: '>=' | '<='; value: number; absolute?: boolean }> = {
  'login sessions/s': { op: '>=', value: 3 },
  'login server CPU per session': { op: '<=', value: 1 / 6 },
  'login server CPU per session (TLS)': { op: '<=', value: 1 / 3 },
  'retr 100KB MB/s': { op: '>=', value: 1.5 },
  'retr 5MB MB/s': { op: '>=', value: 1.5 },
  'retr 100KB server CPU per GB': { op: '<=', value: 0.5 },
  'retr 5MB server CPU per GB': { op: '<=', value: 0.5 },
  'bigbox first sight login+STAT': { op: '<=', value: 1 },
  'bigbox settled login+STAT': { op: '<=', value: 0.5 },
  'bigbox settled LIST': { op: '<=', value: 1 },
  'bigbox settled UIDL': { op: '<=', value: 1 },
  'idle memory per session': { op: '<=', value: 1 / 20 },
  'idle NOOP p99': { op: '<=', value: 5, absolute: true },
  'deliver deliveries/s': { op: '>=', value: 1.5 },
  'deliver server CPU per delivery': { op: '<=', value: 1 },
};

export interface Row {
  readonly name: string;
  readonly unit: string;
  readonly better: Metric['better'];
  readonly poplar: number | undefined;
  readonly dovecot: number | undefined;
  /** poplar / dovecot */
  readonly ratio: number | undefined;
  readonly target: string;
  readonly met: boolean | undefined;
}

/** Outcome of one scenario on one server: a result, or why there is none. */
export type Outcome = { result: Result } | { error: string };

export function rows(poplar: Outcome[], dovecot: Outcome[]): Row[] {
  const metrics = (os: Outcome[]): Map<string, Metric> =>
    new Map(os.flatMap((o) => ('result' in o ? o.result.metrics : [])).map((m) => [m.name, m]));
  const p = metrics(poplar);
  const d = metrics(dovecot);
  const names = [...new Set([...d.keys(), ...p.keys()])];
  return names.map((name) => {
    const m = (p.get(name) ?? d.get(name))!;
    const pv = p.get(name)?.value;
    const dv = d.get(name)?.value;
    const ratio = pv !== undefined && dv !== undefined && dv !== 0 ? pv / dv : undefined;
    const t = TARGETS[name];
    let met: boolean | undefined;
    const subject = t?.absolute ? pv : ratio;
    if (t && subject !== undefined) met = t.op === '>=' ? subject >= t.value : subject <= t.value;
    const target = t === undefined ? '' : `${t.absolute ? 'poplar' : 'ratio'} ${t.op === '>=' ? '≥' : '≤'} ${t.absolute ? `${t.value} ${m.unit}` : fraction(t.value)}`;
    return { name, unit: m.unit, better: m.better, poplar: pv, dovecot: dv, ratio, target, met };
  });
}

const fraction = (v: number): string => (v >= 1 ? `${v}×` : `1/${Math.round(1 / v)}`);
const cell = (v: number | undefined): string => (v === undefined ? 'n/a' : fmt(v));

export function markdownTable(rs: readonly Row[]): string {
  const out = ['| metric | unit | poplar | Dovecot | poplar/Dovecot | target | met |', '| --- | --- | ---: | ---: | ---: | --- | --- |'];
  for (const r of rs) {
    const met = r.met === undefined ? (r.target === '' ? '' : 'n/a') : r.met ? 'yes' : 'no';
    out.push(`| ${r.name} | ${r.unit} | ${cell(r.poplar)} | ${cell(r.dovecot)} | ${r.ratio === undefined ? 'n/a' : r.ratio.toFixed(3)} | ${r.target} | ${met} |`);
  }
  return out.join('\n');
}

/** Wall time, CPU of the bench client and of the server, items verified: per scenario and server. */
export function costTable(runs: { server: string; scenario: string; outcome: Outcome }[]): string {
  const out = ['| scenario | server | wall s | bench client CPU s | server CPU s | verified | note |', '| --- | --- | ---: | ---: | ---: | ---: | --- |'];
  for (const { server, scenario, outcome: o } of runs) {
    if ('error' in o) out.push(`| ${scenario} | ${server} | | | | | n/a: ${o.error.replaceAll('|', '/')} |`);
    else {
      const r = o.result;
      out.push(`| ${r.scenario} | ${server} | ${fmt(r.wallS)} | ${fmt(r.clientCpuS)} | ${r.serverCpuS === undefined ? '' : fmt(r.serverCpuS)} | ${r.verified} | ${r.notes.join('; ').replaceAll('|', '/')} |`);
    }
  }
  return out.join('\n');
}

/** Bars of log2(advantage) where advantage = ratio for higher-is-better, 1/ratio otherwise. */
export function svgChart(rs: readonly Row[], title: string): string {
  const items = rs.filter((r) => r.ratio !== undefined && r.ratio > 0);
  const W = 900, rowH = 22, left = 300, top = 50, plotW = 520, maxLog = 5; // ±32×
  const H = top + items.length * rowH + 50;
  const x = (adv: number): number => left + plotW / 2 + (Math.max(-maxLog, Math.min(maxLog, Math.log2(adv))) / maxLog) * (plotW / 2);
  const esc = (s: string): string => s.replaceAll('&', '&amp;').replaceAll('<', '&lt;');
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    `<text x="${W / 2}" y="38" text-anchor="middle" fill="#555">poplar's advantage over Dovecot (log scale; right of 1× is better; tick: target; green: met, red: not met, grey: no target)</text>`,
  ];
  for (let k = -maxLog; k <= maxLog; k++) {
    const gx = x(2 ** k);
    parts.push(`<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${H - 40}" stroke="${k === 0 ? '#000' : '#ddd'}"/>`);
    parts.push(`<text x="${gx}" y="${H - 25}" text-anchor="middle" fill="#555">${k >= 0 ? 2 ** k : `1/${2 ** -k}`}×</text>`);
  }
  items.forEach((r, i) => {
    const y = top + i * rowH;
    const adv = r.better === 'higher' ? r.ratio! : 1 / r.ratio!;
    const color = r.met === undefined ? '#999' : r.met ? '#2a8' : '#d44';
    const [a, b] = [x(1), x(adv)].sort((p, q) => p - q);
    parts.push(`<text x="${left - 8}" y="${y + 15}" text-anchor="end">${esc(r.name)}</text>`);
    parts.push(`<rect x="${a}" y="${y + 4}" width="${Math.max(1, b! - a!)}" height="${rowH - 8}" fill="${color}"/>`);
    parts.push(`<text x="${left + plotW + 8}" y="${y + 15}">${fmt(adv)}×</text>`);
    const t = TARGETS[r.name];
    if (t && !t.absolute) {
      const tx = x(r.better === 'higher' ? t.value : 1 / t.value);
      parts.push(`<line x1="${tx}" y1="${y + 1}" x2="${tx}" y2="${y + rowH - 1}" stroke="#000" stroke-width="2"/>`);
    }
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

/**
 * The targets of issue 15 (R-X17) for poplar on PostgreSQL: against Dovecot, against Maildir
 * poplar, or its own figure (`absolute`).
 */
export const PG_TARGETS: Record<string, { op: '>=' | '<='; value: number; versus: 'dovecot' | 'poplar' | 'absolute' }> = {
  'login sessions/s': { op: '>=', value: 1, versus: 'dovecot' },
  'deliver deliveries/s': { op: '>=', value: 1, versus: 'dovecot' },
  'retr 100KB MB/s': { op: '>=', value: 0.7, versus: 'poplar' },
  'retr 5MB MB/s': { op: '>=', value: 0.7, versus: 'poplar' },
  'bigbox settled login+STAT': { op: '<=', value: 50, versus: 'absolute' },
};

/** One metric of the three-server table; `pg2` is the 2-node run through HAProxy, when there is one. */
export interface Row3 {
  readonly name: string;
  readonly unit: string;
  readonly poplar: number | undefined;
  readonly pg: number | undefined;
  readonly pg2: number | undefined;
  readonly dovecot: number | undefined;
  readonly pgTarget: string;
  readonly pgMet: boolean | undefined;
}

const byName = (os: readonly Outcome[]): Map<string, Metric> =>
  new Map(os.flatMap((o) => ('result' in o ? o.result.metrics : [])).map((m) => [m.name, m]));

export function rows3(poplar: Outcome[], pg: Outcome[], dovecot: Outcome[], pg2: Outcome[]): Row3[] {
  const [p, g, d, g2] = [byName(poplar), byName(pg), byName(dovecot), byName(pg2)];
  const names = [...new Set([...g.keys(), ...p.keys(), ...d.keys(), ...g2.keys()])]; // poplar-pg first: its database rows beside their scenario
  return names.map((name) => {
    const unit = (p.get(name) ?? g.get(name) ?? d.get(name) ?? g2.get(name))!.unit;
    const pv = p.get(name)?.value;
    const gv = g.get(name)?.value;
    const dv = d.get(name)?.value;
    const t = PG_TARGETS[name];
    let pgMet: boolean | undefined;
    let pgTarget = '';
    if (t) {
      const base = t.versus === 'dovecot' ? dv : t.versus === 'poplar' ? pv : 1;
      const subject = gv === undefined || base === undefined || base === 0 ? undefined : gv / base;
      if (subject !== undefined) pgMet = t.op === '>=' ? subject >= t.value : subject <= t.value;
      const op = t.op === '>=' ? '≥' : '≤';
      pgTarget = t.versus === 'absolute' ? `poplar-pg ${op} ${t.value} ${unit}` : `poplar-pg ${op} ${t.value}× ${t.versus === 'dovecot' ? 'Dovecot' : 'poplar'}`;
    }
    return { name, unit, poplar: pv, pg: gv, pg2: g2.get(name)?.value, dovecot: dv, pgTarget, pgMet };
  });
}

const ratio = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined || b === 0 ? 'n/a' : (a / b).toFixed(3));

/** poplar / poplar-pg (/ poplar-pg 2 nodes) / Dovecot, the ratios issue 15's targets use, and those targets. */
export function markdownTable3(rs: readonly Row3[], twoNodes: boolean): string {
  const head = ['metric', 'unit', 'poplar', 'poplar-pg', ...(twoNodes ? ['poplar-pg 2 nodes'] : []), 'Dovecot', 'pg/Dovecot', 'pg/poplar', ...(twoNodes ? ['2 nodes/1 node'] : []), 'target (issue 15)', 'met'];
  const out = [`| ${head.join(' | ')} |`, `| ${head.map((h, i) => (i < 2 || h.startsWith('target') || h === 'met' ? '---' : '---:')).join(' | ')} |`];
  for (const r of rs) {
    const met = r.pgMet === undefined ? (r.pgTarget === '' ? '' : 'n/a') : r.pgMet ? 'yes' : 'no';
    out.push(`| ${[r.name, r.unit, cell(r.poplar), cell(r.pg), ...(twoNodes ? [cell(r.pg2)] : []), cell(r.dovecot), ratio(r.pg, r.dovecot), ratio(r.pg, r.poplar), ...(twoNodes ? [ratio(r.pg2, r.pg)] : []), r.pgTarget, met].join(' | ')} |`);
  }
  return out.join('\n');
}

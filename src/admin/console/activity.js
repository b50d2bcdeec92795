// Charts of logins, failed logins and deliveries per minute over the last hour (uPlot), the
// addresses and users with recent failed logins and their penalty, and delivery counts (R-X21).
import { h } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import uPlot from 'uplot';
import { all, api, bytes } from './api.js';
import { PartialNote, usePoll } from './sessions.js';

const html = htm.bind(h);
const REFRESH_MS = 5000;

const SERIES = [
  { key: 'logins', title: 'Logins', color: '#2f7d4f' },
  { key: 'failedLogins', title: 'Failed logins', color: '#c0392b' },
  { key: 'deliveries', title: 'Deliveries', color: '#2c5fa8' },
];

/** One uPlot chart; its data's total is kept on the element (data-total) for a glance and tests. */
function Chart({ title, color, series, times }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const width = Math.max(280, box.current.clientWidth);
    plot.current = new uPlot({
      width,
      height: 160,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { y: { range: (_u, _min, max) => [0, Math.max(4, max)] } },
      axes: [{ stroke: '#666', grid: { stroke: '#eee' } }, { stroke: '#666', grid: { stroke: '#eee' }, size: 40 }],
      series: [{}, { label: title, stroke: color, fill: `${color}22`, width: 2, paths: uPlot.paths.stepped({ align: 1 }) }],
    }, [[], []], box.current);
    return () => plot.current.destroy();
  }, []);
  useEffect(() => {
    if (times.length > 0) plot.current.setData([times, series]);
  }, [times, series]);
  const total = series.reduce((a, b) => a + b, 0);
  return html`<figure class="chart" data-series=${title} data-total=${total}>
    <figcaption>${title} <span class="total">${total} in the last hour</span></figcaption>
    <div ref=${box}></div>
  </figure>`;
}

function Offenders({ kind, items }) {
  return html`<table class="data" data-testid=${`failed-by-${kind}`}>
    <thead><tr><th>${kind === 'address' ? 'Address' : 'User'}</th><th class="num">Recent failures</th><th>Last</th><th class="num">Penalty</th></tr></thead>
    <tbody>
      ${items.length === 0 && html`<tr><td colspan="4" class="empty">None.</td></tr>`}
      ${items.map((o) => html`<tr key=${o.key}><td><code>${o.key}</code></td><td class="num">${o.recentFailures}</td>
        <td>${new Date(o.last).toLocaleTimeString()}</td><td class="num">${o.penaltyMs === 0 ? '—' : `${o.penaltyMs / 1000} s`}</td></tr>`)}
    </tbody>
  </table>`;
}

function deliveryText(d) {
  const refused = Object.values(d.refused).reduce((a, b) => a + b, 0);
  return `Since ${new Date(d.since).toLocaleString()}: ${d.delivered} delivered (${bytes(d.bytes)}), ` +
    `${d.rejected} rejected, ${d.failed} failed, ${refused} refused.`;
}

export function ActivityPage({ onAuthLost }) {
  const [history, setHistory] = useState(undefined);
  const [byAddress, setByAddress] = useState([]);
  const [byUser, setByUser] = useState([]);
  const [deliveries, setDeliveries] = useState(undefined);
  const [partial, setPartial] = useState(false);
  const load = () => Promise.all([api('GET', '/stats/history'), all('/failed-logins/by-address'), all('/failed-logins/by-user'), api('GET', '/deliveries')])
    .then(([hist, addr, users, del]) => {
      setHistory(hist);
      setByAddress(addr.items);
      setByUser(users.items);
      setDeliveries(del);
      setPartial([hist, addr, users, del].some((r) => r.partial === true));
    }, (e) => {
      if (e.status === 401) onAuthLost();
    });
  usePoll(load, REFRESH_MS);
  const times = history === undefined ? [] : history.series.logins.map((_, i) => history.start + i * history.step);
  return html`<section>
    <h2>Last hour</h2>
    ${partial && html`<${PartialNote} what="logins, failures and deliveries" />`}
    <div class="charts">
      ${SERIES.map((s) => html`<${Chart} key=${s.key} title=${s.title} color=${s.color} times=${times}
        series=${history === undefined ? [] : history.series[s.key]} />`)}
    </div>
    ${deliveries && html`<p class="totals" data-testid="delivery-totals">${deliveryText(deliveries)}</p>`}
    <div class="columns">
      <div><h3>Failed logins by address</h3><${Offenders} kind="address" items=${byAddress} /></div>
      <div><h3>Failed logins by user</h3><${Offenders} kind="user" items=${byUser} /></div>
    </div>
  </section>`;
}

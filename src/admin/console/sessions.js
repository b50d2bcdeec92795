// Live sessions, refreshed every 2 s, with an End button per session (R-X21).
import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import htm from 'htm';
import { ago, all, api, bytes } from './api.js';

const html = htm.bind(h);
export const REFRESH_MS = 2000;

/** Runs `load` now and every `ms` while the page is shown. */
export function usePoll(load, ms) {
  useEffect(() => {
    let stopped = false;
    let timer;
    const tick = async () => {
      await load().catch(() => undefined);
      if (!stopped) timer = setTimeout(tick, ms);
    };
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, []);
}

/** Shown when the API answered `partial: true`: a worker process did not answer in time (R-X16). */
export function PartialNote({ what }) {
  return html`<p class="warning" role="status" data-testid="partial">
    A worker process did not answer in time: the ${what} it serves are missing here. The next refresh asks again.</p>`;
}

export function SessionsPage({ onAuthLost }) {
  const [sessions, setSessions] = useState(undefined);
  const [error, setError] = useState('');
  const [partial, setPartial] = useState(false);
  const load = () => all('/sessions').then((r) => {
    setSessions(r.items);
    setPartial(r.partial === true);
    setError('');
  }, (e) => {
    if (e.status === 401) onAuthLost();
    setError(e.message);
  });
  usePoll(load, REFRESH_MS);
  const end = (id) => api('DELETE', `/sessions/${encodeURIComponent(id)}`).then(load, (e) => setError(e.message));

  return html`<section>
    <h2>Live sessions <span class="count" data-testid="session-count">${sessions?.length ?? '…'}</span></h2>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${partial && html`<${PartialNote} what="sessions" />`}
    <table class="data" data-testid="sessions">
      <thead><tr><th>User</th><th>Maildrop</th><th>Address</th><th>Connected</th><th>State</th><th class="num">Sent</th><th></th></tr></thead>
      <tbody>
        ${sessions?.length === 0 && html`<tr><td colspan="7" class="empty">No one is connected.</td></tr>`}
        ${sessions?.map((s) => html`<tr key=${s.id} data-session=${s.id} data-user=${s.user ?? ''}>
          <td>${s.user ?? html`<span class="muted">not logged in</span>`}</td>
          <td>${s.mailbox ?? ''}</td>
          <td><code>${s.address}</code>${s.tls ? html` <span class="badge">TLS</span>` : ''}</td>
          <td title=${s.since}>${ago(s.since)}</td>
          <td><span class=${`state ${s.state}`}>${s.state}</span></td>
          <td class="num">${bytes(s.bytesSent)}</td>
          <td><button class="danger small" onClick=${() => end(s.id)}>End</button></td>
        </tr>`)}
      </tbody>
    </table>
    <p class="hint">Refreshes every ${REFRESH_MS / 1000} s. Ending a session drops its connection; nothing is deleted (no UPDATE).</p>
  </section>`;
}

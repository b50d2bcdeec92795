// Users with quota bars, and the actions: add a user, reset a password, change a quota (R-X21).
import { h } from 'preact';
import { useState } from 'preact/hooks';
import htm from 'htm';
import { all, api, bytes, parseSize } from './api.js';
import { usePoll } from './sessions.js';

const html = htm.bind(h);

function QuotaBar({ usage, quota }) {
  const limits = [];
  if (quota.bytes > 0) limits.push(usage.bytes / quota.bytes);
  if (quota.messages > 0) limits.push(usage.messages / quota.messages);
  const text = `${bytes(usage.bytes)}${quota.bytes > 0 ? ` of ${bytes(quota.bytes)}` : ''}, ${usage.messages} msg${quota.messages > 0 ? ` of ${quota.messages}` : ''}`;
  if (limits.length === 0) return html`<span class="muted">${text} · no quota</span>`;
  const pct = Math.min(100, Math.max(...limits) * 100);
  const level = pct >= 90 ? 'full' : pct >= 75 ? 'high' : 'ok';
  return html`<div class="quota" title=${`${pct.toFixed(1)} %`}>
    <div class="bar"><div class=${`fill ${level}`} style=${{ width: `${pct}%` }}></div></div>
    <span class="quota-text">${text}</span>
  </div>`;
}

function AddUser({ done }) {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const submit = (e) => {
    e.preventDefault();
    api('POST', '/users', { name, password }).then(() => {
      setName('');
      setPassword('');
      setError('');
      done(`User ${name} added.`);
    }, (err) => setError(err.message));
  };
  return html`<form class="inline" onSubmit=${submit} data-testid="add-user">
    <strong>Add a user</strong>
    <input name="name" placeholder="name" required value=${name} onInput=${(e) => setName(e.currentTarget.value)} />
    <input name="password" type="password" placeholder="password" autocomplete="new-password" required value=${password}
      onInput=${(e) => setPassword(e.currentTarget.value)} />
    <button type="submit">Add</button>
    ${error && html`<span class="error" role="alert">${error}</span>`}
  </form>`;
}

/** The row's open action: a password or quota form. */
function RowAction({ user, action, close, done }) {
  const [value, setValue] = useState(action === 'quota' ? (user.quota.bytes === 0 ? '' : String(user.quota.bytes)) : '');
  const [error, setError] = useState('');
  const submit = (e) => {
    e.preventDefault();
    let request;
    if (action === 'password') request = api('PUT', `/users/${encodeURIComponent(user.name)}/password`, { password: value });
    else {
      const size = value.trim() === '' ? null : parseSize(value);
      if (size === undefined) return setError('a size such as 500M or 2G, empty for the default');
      request = api('PATCH', `/users/${encodeURIComponent(user.name)}/policy`, { quota_bytes: size });
    }
    request.then(() => done(action === 'password' ? `Password of ${user.name} changed.` : `Quota of ${user.name} changed.`), (err) => setError(err.message));
  };
  return html`<tr class="action-row"><td colspan="4">
    <form class="inline" onSubmit=${submit} data-testid=${`${action}-form`}>
      <label>${action === 'password' ? `New password for ${user.name}` : `Storage quota of ${user.name} (e.g. 500M; empty: default)`}</label>
      <input name="value" type=${action === 'password' ? 'password' : 'text'} autocomplete="new-password" value=${value}
        onInput=${(e) => setValue(e.currentTarget.value)} />
      <button type="submit">Save</button>
      <button type="button" class="link" onClick=${close}>Cancel</button>
      ${error && html`<span class="error" role="alert">${error}</span>`}
    </form>
  </td></tr>`;
}

export function UsersPage({ onAuthLost }) {
  const [data, setData] = useState(undefined);
  const [open, setOpen] = useState(undefined);
  const [message, setMessage] = useState('');
  const load = () => all('/users').then(setData, (e) => {
    if (e.status === 401) onAuthLost();
    setMessage(e.message);
  });
  usePoll(load, 10_000);
  const done = (text) => {
    setOpen(undefined);
    setMessage(text);
    void load();
  };
  const writable = data?.writable !== false;
  return html`<section>
    <h2>Users <span class="count">${data?.items.length ?? '…'}</span></h2>
    ${data?.writable === false && html`<p class="note" data-testid="read-only">Read-only: ${data.note}</p>`}
    ${writable && html`<${AddUser} done=${done} />`}
    ${message && html`<p class="message" role="status">${message}</p>`}
    <table class="data" data-testid="users">
      <thead><tr><th>Name</th><th>Grants</th><th>Storage</th><th></th></tr></thead>
      <tbody>
        ${data?.items.map((u) => html`
          <tr key=${u.name} data-user=${u.name}>
            <td>${u.name}</td>
            <td>${u.grants.join(', ')}</td>
            <td><${QuotaBar} usage=${u.usage} quota=${u.quota} /></td>
            <td class="actions">
              ${writable && html`<button class="small" onClick=${() => setOpen({ name: u.name, action: 'password' })}>Reset password</button>`}
              <button class="small" onClick=${() => setOpen({ name: u.name, action: 'quota' })}>Quota</button>
            </td>
          </tr>
          ${open?.name === u.name && html`<${RowAction} user=${u} action=${open.action} close=${() => setOpen(undefined)} done=${done} />`}`)}
      </tbody>
    </table>
  </section>`;
}

// The poplar web console (R-X21): preact + htm, bundled by esbuild (scripts/build-console.mjs).
// Pages: live sessions, activity (charts), users. No inline script or style: the CSP forbids it.
import { h, render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import htm from 'htm';
import { api, forgetToken, setToken, takeTokenFromFragment, token } from './api.js';
import { ActivityPage } from './activity.js';
import { SessionsPage } from './sessions.js';
import { UsersPage } from './users.js';

export const html = htm.bind(h);

const PAGES = [
  { id: 'sessions', title: 'Sessions', component: SessionsPage },
  { id: 'activity', title: 'Activity', component: ActivityPage },
  { id: 'users', title: 'Users', component: UsersPage },
];

function Login({ onLogin, error }) {
  const [value, setValue] = useState('');
  const submit = (e) => {
    e.preventDefault();
    setToken(value.trim());
    onLogin();
  };
  return html`<main class="login">
    <h1><span class="logo">poplar</span> console</h1>
    <form onSubmit=${submit} data-testid="login-form">
      <label for="token">Admin token</label>
      <input id="token" name="token" type="password" autocomplete="off" value=${value}
        onInput=${(e) => setValue(e.currentTarget.value)} placeholder="poplar_…" />
      <button type="submit">Log in</button>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <p class="hint">Make a token with <code>poplar admin token</code>, or open the URL it prints (<code>/#token=…</code>).</p>
    </form>
  </main>`;
}

function App() {
  const [status, setStatus] = useState(token() === null ? 'login' : 'checking');
  const [error, setError] = useState('');
  const [tokenId, setTokenId] = useState('');
  const [page, setPage] = useState('sessions');

  const check = () => {
    setStatus('checking');
    api('GET', '/whoami')
      .then((r) => {
        setTokenId(r.tokenId);
        setError('');
        setStatus('in');
      })
      .catch((e) => {
        forgetToken();
        setError(e.status === 401 ? 'That token is not valid.' : e.message);
        setStatus('login');
      });
  };
  useEffect(() => {
    if (status === 'checking') check();
  }, []);

  if (status === 'login') return html`<${Login} onLogin=${check} error=${error} />`;
  if (status === 'checking') return html`<main class="login"><p>Checking the token…</p></main>`;
  const Page = PAGES.find((p) => p.id === page).component;
  const logout = () => {
    forgetToken();
    setStatus('login');
  };
  return html`<div class="shell">
    <header>
      <span class="logo">poplar</span>
      <nav>
        ${PAGES.map((p) => html`<button class=${p.id === page ? 'tab active' : 'tab'} data-page=${p.id}
          onClick=${() => setPage(p.id)}>${p.title}</button>`)}
      </nav>
      <span class="who">token ${tokenId} <button class="link" onClick=${logout}>Log out</button></span>
    </header>
    <main><${Page} onAuthLost=${logout} /></main>
  </div>`;
}

takeTokenFromFragment();
render(html`<${App} />`, document.getElementById('app'));

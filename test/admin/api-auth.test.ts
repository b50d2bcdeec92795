/**
 * R-X21 admin API security over real HTTP: bearer tokens (missing, wrong, revoked), the OpenAPI
 * document, the security headers, no cookie, the token never logged, wrong tokens throttled, and
 * the listener's refusal of a non-loopback address without TLS.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { AdminListenError, startAdminServer } from '../../src/admin/api-server.js';
import { AdminTokens } from '../../src/admin/tokens.js';
import { testCerts } from '../helpers/certs.js';
import { startAdminHarness, type AdminHarness } from './harness.js';

describe('R-X21 admin API authentication', () => {
  let h: AdminHarness;
  before(async () => {
    h = await startAdminHarness({ delayMs: 150 });
  });
  after(() => h.close());

  it('R-X21 a request without a token is refused with 401 TOKEN_MISSING and WWW-Authenticate: Bearer', async () => {
    const r = await h.http('GET', '/api/v1/sessions', undefined, null);
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, 'TOKEN_MISSING');
    assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
    const basic = await h.http('GET', '/api/v1/users', undefined, 'Basic YWRtaW46YWRtaW4=');
    assert.equal(basic.json.error.code, 'TOKEN_MISSING');
  });

  it('R-X21 a wrong token is refused with 401 TOKEN_INVALID after the failed-login delay of its address', async () => {
    const started = Date.now();
    const r = await h.http('GET', '/api/v1/sessions', undefined, `Bearer poplar_00000000_${'A'.repeat(43)}`);
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, 'TOKEN_INVALID');
    const second = await h.http('GET', '/api/v1/users', undefined, `Bearer ${h.token.slice(0, -1)}x`);
    assert.equal(second.json.error.code, 'TOKEN_INVALID');
    // 150 ms, then 300 ms: the delay grows per address as for POP3 logins (R-X9)
    assert.ok(Date.now() - started >= 450, `two wrong tokens took ${Date.now() - started} ms`);
    assert.match(h.logText(), /"event":"admin_auth_failed"/);
  });

  it('R-X21 a valid token is accepted; after --revoke the same token gets 401', async () => {
    const made = await h.tokens.create();
    const ok = await h.http('GET', '/api/v1/whoami', undefined, `Bearer ${made.token}`);
    assert.equal(ok.status, 200);
    assert.equal(ok.json.tokenId, made.id);
    await h.tokens.revoke(made.id.slice(0, 5));
    const gone = await h.http('GET', '/api/v1/whoami', undefined, `Bearer ${made.token}`);
    assert.equal(gone.status, 401);
    assert.equal(gone.json.error.code, 'TOKEN_INVALID');
  });

  it('R-X21 the tokens file holds SHA-256 hashes only, never a token', async () => {
    const text = await readFile(h.tokens.path, 'utf8');
    // `poplar_<id>_<secret>`: the secret is base64url, which may itself hold a '_'.
    const secret = h.token.slice(h.token.indexOf('_', 'poplar_'.length) + 1);
    assert.equal(secret.length, 43, 'the whole secret (32 bytes, base64url)');
    assert.ok(!text.includes(secret), 'the secret part of the token is not in the file');
    assert.match(text, /^[0-9a-f]{8} sha256:[0-9a-f]{64} \S+$/m);
  });

  it('R-X21 one OpenAPI document at /api/v1/openapi.json lists every route with bearer security', async () => {
    const r = await h.http('GET', '/api/v1/openapi.json', undefined, null);
    assert.equal(r.status, 200);
    assert.equal(r.json.openapi, '3.1.0');
    assert.deepEqual(r.json.security, [{ bearer: [] }]);
    for (const p of ['/api/v1/sessions', '/api/v1/sessions/{id}', '/api/v1/users', '/api/v1/users/{name}/policy', '/api/v1/grants', '/api/v1/maildrops', '/api/v1/failed-logins/by-address', '/api/v1/deliveries', '/api/v1/stats/history']) {
      assert.ok(r.json.paths[p] !== undefined, `${p} documented`);
    }
  });

  it('R-X21 every answer carries a strict CSP, nosniff and frame-ancestors none, and no cookie', async () => {
    for (const path of ['/', '/app.js', '/api/v1/sessions', '/api/v1/nope']) {
      const res = await fetch(`${h.url}${path}`, { headers: { authorization: `Bearer ${h.token}` } });
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'self'/, path);
      assert.match(csp, /frame-ancestors 'none'/, path);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(res.headers.get('set-cookie'), null, path);
    }
    const page = await (await fetch(`${h.url}/`)).text();
    assert.doesNotMatch(page, /<script>|<style|style=|onclick=/i, 'no inline script or style in the console page');
    assert.doesNotMatch(page, /https?:\/\//, 'no external resource');
  });

  it('R-X21 an unknown route answers 404 NOT_FOUND as JSON', async () => {
    const r = await h.http('GET', '/api/v1/nope');
    assert.equal(r.status, 404);
    assert.equal(r.json.error.code, 'NOT_FOUND');
  });

  it('R-X21 the token is never logged', async () => {
    await h.http('GET', '/api/v1/sessions');
    await h.http('GET', '/api/v1/sessions', undefined, `Bearer ${h.token}x`);
    assert.ok(!h.logText().includes(h.token), 'token absent from the log');
  });
});

describe('R-X21 admin listener address', () => {
  const context = {} as never;
  const failureDelay = { baseMs: 0, maxMs: 0, windowMs: 1000 };

  it('R-X21 refuses a non-loopback address without TLS', async () => {
    await assert.rejects(
      startAdminServer({ host: '0.0.0.0', port: 0, tokens: new AdminTokens('/nonexistent/t'), failureDelay, context }),
      (e: unknown) => e instanceof AdminListenError && /not a loopback address/.test(e.message),
    );
  });

  it('R-X21 with admin TLS files it speaks HTTPS', async () => {
    const certs = await testCerts();
    const admin = await startAdminServer({ host: '127.0.0.1', port: 0, tls: { cert: certs.cert, key: certs.key }, tokens: new AdminTokens('/nonexistent/t'), failureDelay, context });
    try {
      const status = await new Promise<number | undefined>((resolve, reject) => {
        request({ host: '127.0.0.1', port: admin.address().port, path: '/api/v1/openapi.json', rejectUnauthorized: false }, (res) => {
          res.resume();
          resolve(res.statusCode);
        }).on('error', reject).end();
      });
      assert.equal(status, 200);
      assert.equal(admin.secure, true);
    } finally {
      await admin.close();
    }
  });
});

/**
 * R-X21 end to end with a real `poplar serve` process: `admin.listen` turns the listener on,
 * `poplar admin token` prints a token once (the file keeps its hash), `--list` and `--revoke`
 * manage tokens, a user added through the API logs in over POP3, and a non-loopback
 * `admin.listen` without TLS stops the server from starting with a one-line error.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { poplar } from '../cli/run.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { startPoplar, type PoplarProcess } from '../helpers/poplar-process.js';
import { waitFor } from '../helpers/wait.js';

describe('R-X21 poplar serve with admin.listen', () => {
  let p: PoplarProcess;
  let url: string;
  before(async () => {
    p = await startPoplar({ overrides: ['admin.listen=127.0.0.1:0', 'auth.scrypt_cost=14'] });
    await waitFor(() => p.events('listening').some((e) => e['protocol'] === 'http'), 10_000, 'admin listening');
    url = `http://127.0.0.1:${String(p.events('listening').find((e) => e['protocol'] === 'http')!['port'])}`;
  });
  after(() => p.cleanup());

  const call = (token: string, method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  it('R-X21 poplar admin token prints a token once; the server accepts it; the file keeps only its hash', async () => {
    const run = await p.cli(['admin', 'token']);
    assert.equal(run.code, 0, run.stderr);
    const token = run.stdout.trim();
    assert.match(token, /^poplar_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$/);
    assert.match(run.stderr, /shown only this once/);
    assert.match(run.stderr, /#token=/);
    const stored = await readFile(join(p.dataDir, 'admin-tokens'), 'utf8');
    assert.ok(!stored.includes(token.slice(16)), 'the token is not stored');
    const who = await call(token, 'GET', '/api/v1/whoami');
    assert.equal(who.status, 200);
    assert.ok(!p.output().includes(token), 'the token is not in the server log');
  });

  it('R-X21 a user added through the API of a running server logs in over POP3', async () => {
    const token = (await p.cli(['admin', 'token'])).stdout.trim();
    const r = await call(token, 'POST', '/api/v1/users', { name: 'viaapi', password: 'api-pass' });
    assert.equal(r.status, 201);
    const c = await Pop3Client.connect(p.pop3Port);
    try {
      assert.match(await c.login('viaapi', 'api-pass'), /^\+OK/);
    } finally {
      c.close();
    }
  });

  it('R-X21 poplar admin token --list and --revoke <id prefix>: the revoked token gets 401 at once', async () => {
    const token = (await p.cli(['admin', 'token'])).stdout.trim();
    const id = token.slice(7, 15);
    const list = await p.cli(['admin', 'token', '--list']);
    assert.match(list.stdout, new RegExp(`^${id}\\tcreated `, 'm'));
    const revoke = await p.cli(['admin', 'token', '--revoke', id.slice(0, 6)]);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.equal(revoke.stdout, `admin token ${id} revoked\n`);
    const gone = await call(token, 'GET', '/api/v1/whoami');
    assert.equal(gone.status, 401);
    const bad = await p.cli(['admin', 'token', '--revoke', 'zz']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^poplar: invalid token id "zz"/);
    assert.equal(bad.stderr.split('\n').length, 2, 'one line, no stack');
  });
});

describe('R-X21 admin.listen on a non-loopback address', () => {
  let dataDir: string;
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'poplar-admin-nl-'));
  });
  after(() => rm(dataDir, { recursive: true, force: true }));

  it('R-X21 without admin TLS files poplar serve refuses to start, with a one-line error', async () => {
    const run = await poplar(['serve', '--data', dataDir, '-o', 'server.first_run_user=', '-o', 'pop3.listen=127.0.0.1:0', '-o', 'admin.listen=0.0.0.0:0']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^poplar: admin\.listen 0\.0\.0\.0:0 is not a loopback address: set admin\.tls_cert and admin\.tls_key/);
    assert.equal(run.stderr.split('\n').length, 2);
  });

  it('R-X21 admin.tls_cert without admin.tls_key is refused with a one-line error', async () => {
    const run = await poplar(['serve', '--data', dataDir, '-o', 'server.first_run_user=', '-o', 'pop3.listen=127.0.0.1:0', '-o', 'admin.listen=127.0.0.1:0', '-o', 'admin.tls_cert=/etc/ssl/x.pem']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^poplar: admin\.tls_cert and admin\.tls_key go together/);
  });
});

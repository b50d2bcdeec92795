/**
 * Real clients logging in with every mechanism they speak (R-S9, R-X4, R-X3, R-K9, R-S14):
 * curl 7.88 (`--login-options AUTH=<mech>`, `--oauth2-bearer`, `--ssl-reqd`, `pop3s://`, client
 * certificates), python3's poplib (`stls()`, `POP3_SSL`, `apop()`), `openssl s_client -starttls
 * pop3`, mpop (GNU SASL: SCRAM-SHA-256, its NTLMv1 refused; APOP) and fetchmail (its NTLMv1
 * refused). TLS clients verify the
 * server's self-signed test certificate with `--cacert`, not `-k`. Each test fetches a message
 * and compares it, or proves the refusal.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testCerts, type TestCerts } from '../helpers/certs.js';
import { testIssuer, type TestIssuer } from '../helpers/oauth.js';
import { startTestServer, waitFor, withServer, type TestServer } from '../helpers/test-server.js';
import { needProgram } from '../helpers/external.js';

const MESSAGE = 'From: a@example.org\r\nSubject: auth test\r\n\r\nfetched with a real client\r\n';
const EXPECTED = MESSAGE.replace(/\r\n/g, '\n');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: readonly string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 30_000, env: { ...process.env, ...opts.env } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
      resolve({ code, stdout, stderr });
    });
    child.stdin?.end(opts.input ?? '');
  });
}

function requireTool(bin: string, pkg: string): void {
  const r = spawnSync(bin, ['--version'], { stdio: 'ignore' });
  if (r.error) assert.fail(`${bin} is required for this test: apt-get install ${pkg}`);
}

/** curl's text of message 1, with LF line ends as curl writes what the server sent (CRLF). */
const curlText = (r: Run): string => r.stdout.replace(/\r\n/g, '\n');

describe('real clients: curl, poplib, openssl, mpop', () => {
  let t: TestServer;
  let certs: TestCerts;
  let issuer: TestIssuer;
  before(async () => {
    requireTool('curl', 'curl');
    certs = await testCerts();
    issuer = await testIssuer();
    t = await startTestServer({
      tls: { clientCa: true },
      users: { alice: { password: 'wonderland' } },
      settings: {
        apop: true,
        mechanisms: ['PLAIN', 'LOGIN', 'CRAM-MD5', 'SCRAM-SHA-256', 'NTLM', 'OAUTHBEARER', 'XOAUTH2', 'EXTERNAL'],
      },
      tokens: issuer.verifier,
    });
    await t.store.deliver('alice', Buffer.from(MESSAGE));
  });
  after(() => t.close());

  const url = (): string => `pop3://127.0.0.1:${t.port}/1`;

  for (const mech of ['PLAIN', 'LOGIN', 'CRAM-MD5', 'NTLM'] as const) {
    it(`R-S9 R-X4 curl logs in with AUTH=${mech} and fetches the message; a wrong password is refused`, async () => {
      const good = await run('curl', ['-sS', '--login-options', `AUTH=${mech}`, '-u', 'alice:wonderland', url()]);
      assert.equal(good.code, 0, good.stderr);
      assert.equal(curlText(good), EXPECTED);
      const bad = await run('curl', ['-sS', '--login-options', `AUTH=${mech}`, '-u', 'alice:wrong', url()]);
      assert.equal(bad.code, 67, `curl: login denied (${bad.stderr})`);
      await waitFor(() => t.logs.some((l) => l.event === 'login' && l.mechanism === mech));
      await waitFor(() => t.logs.some((l) => l.event === 'auth_failed' && l.mechanism === mech && l.user === 'alice'));
    });
  }

  for (const mech of ['XOAUTH2', 'OAUTHBEARER'] as const) {
    it(`R-X4 curl logs in with AUTH=${mech} and --oauth2-bearer; a forged token is refused`, async () => {
      // curl 7.88 prefers OAUTHBEARER whenever it is offered, so each server offers only one.
      await withServer({ users: { alice: { password: 'wonderland' } }, settings: { mechanisms: [mech] }, tokens: issuer.verifier }, async (s) => {
        await s.store.deliver('alice', Buffer.from(MESSAGE));
        const at = `pop3://127.0.0.1:${s.port}/1`;
        const token = await issuer.token('alice');
        const good = await run('curl', ['-sS', '--login-options', `AUTH=${mech}`, '-u', 'alice:', '--oauth2-bearer', token, at]);
        assert.equal(good.code, 0, good.stderr);
        assert.equal(curlText(good), EXPECTED);
        const forged = await issuer.forged('alice');
        const bad = await run('curl', ['-sS', '--login-options', `AUTH=${mech}`, '-u', 'alice:', '--oauth2-bearer', forged, at]);
        assert.equal(bad.code, 67, bad.stderr);
        await waitFor(() => s.logs.some((l) => l.event === 'login' && l.mechanism === mech));
        await waitFor(() => s.logs.some((l) => l.event === 'auth_failed' && l.mechanism === mech));
      });
    });
  }

  it('R-X14 curl --sasl-authzid lets a master user open another user\'s maildrop with PLAIN', async () => {
    await withServer({ users: { alice: { password: 'wonderland' }, admin: { password: 'master-key' } }, settings: { masterUsers: ['admin'] } }, async (s) => {
      await s.store.deliver('alice', Buffer.from(MESSAGE));
      const args = ['-sS', '--login-options', 'AUTH=PLAIN', '--sasl-authzid', 'alice', `pop3://127.0.0.1:${s.port}/1`];
      const r = await run('curl', [...args, '-u', 'admin:master-key']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(curlText(r), EXPECTED);
      await waitFor(() => s.logs.some((l) => l.event === 'master_login' && l.master === 'admin' && l.user === 'alice'));
      const notMaster = await run('curl', [...args.map((a) => (a === 'alice' ? 'admin' : a)), '-u', 'alice:wonderland']);
      assert.equal(notMaster.code, 67, notMaster.stderr);
    });
  });

  it('R-X3 curl --ssl-reqd upgrades with STLS, verifying the certificate, and fetches the message', async () => {
    const r = await run('curl', ['-sS', '--ssl-reqd', '--cacert', certs.cert, '-u', 'alice:wonderland', `pop3://localhost:${t.port}/1`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(curlText(r), EXPECTED);
  });

  it('R-S5 R-X3 curl fetches over implicit TLS (pop3s://)', async () => {
    const r = await run('curl', ['-sS', '--cacert', certs.cert, '-u', 'alice:wonderland', `pop3s://localhost:${t.tlsPort}/1`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(curlText(r), EXPECTED);
  });

  it('R-X4 curl logs in with AUTH=EXTERNAL and a client certificate; without one EXTERNAL is not offered', async () => {
    const base = ['-sS', '--cacert', certs.cert, '--login-options', 'AUTH=EXTERNAL', '-u', 'alice:'];
    const r = await run('curl', [...base, '--cert', certs.clientCert, '--key', certs.clientKey, `pop3s://localhost:${t.tlsPort}/1`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(curlText(r), EXPECTED);
    await waitFor(() => t.logs.some((l) => l.event === 'login' && l.mechanism === 'EXTERNAL'));
    const none = await run('curl', [...base, `pop3s://localhost:${t.tlsPort}/1`]);
    assert.notEqual(none.code, 0);
  });

  it('R-S14 curl with PLAIN is refused without TLS on an untrusted network, and succeeds with --ssl-reqd', async () => {
    await withServer({ tls: true, trustedNetworks: [], users: { alice: { password: 'wonderland' } } }, async (s) => {
      await s.store.deliver('alice', Buffer.from(MESSAGE));
      const plain = await run('curl', ['-sS', '--login-options', 'AUTH=PLAIN', '-u', 'alice:wonderland', `pop3://127.0.0.1:${s.port}/1`]);
      assert.notEqual(plain.code, 0);
      const user = await run('curl', ['-sS', '--login-options', 'AUTH=+APOP', '-u', 'alice:wonderland', `pop3://127.0.0.1:${s.port}/1`]);
      assert.notEqual(user.code, 0);
      const tls = await run('curl', ['-sS', '--ssl-reqd', '--cacert', certs.cert, '--login-options', 'AUTH=PLAIN', '-u', 'alice:wonderland', `pop3://localhost:${s.port}/1`]);
      assert.equal(tls.code, 0, tls.stderr);
      assert.equal(curlText(tls), EXPECTED);
    });
  });

  it('R-X3 R-S5 R-K9 python3 poplib: stls(), POP3_SSL and apop()', async () => {
    const script = String.raw`
import json, poplib, ssl, sys
port, tls_port, ca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
out = {}
p = poplib.POP3('localhost', port, timeout=10)
out['stls'] = p.stls(context=ctx).decode()
out['capa'] = sorted(p.capa().keys())
p.user('alice')
out['pass'] = p.pass_('wonderland').decode()
out['retr'] = b'\n'.join(p.retr(1)[1]).decode()
p.quit()
s = poplib.POP3_SSL('localhost', tls_port, context=ctx, timeout=10)
out['ssl_pass'] = (s.user('alice'), s.pass_('wonderland'))[1].decode()
s.quit()
a = poplib.POP3('localhost', port, timeout=10)
out['apop'] = a.apop('alice', 'wonderland').decode()
a.quit()
b = poplib.POP3('localhost', port, timeout=10)
try:
    b.apop('alice', 'wrong')
    out['apop_bad'] = 'accepted'
except poplib.error_proto as e:
    out['apop_bad'] = str(e)
print(json.dumps(out))
`;
    const r = await run('python3', ['-c', script, String(t.port), String(t.tlsPort), certs.cert]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(out.stls, '+OK Begin TLS negotiation');
    assert.ok((out.capa as string[]).includes('USER') && !(out.capa as string[]).includes('STLS'));
    assert.match(out.pass as string, /^\+OK alice has 1 message/);
    assert.equal(out.retr, EXPECTED.trimEnd());
    assert.match(out.ssl_pass as string, /^\+OK alice/);
    assert.match(out.apop as string, /^\+OK alice/);
    assert.equal(out.apop_bad, "b'-ERR [AUTH] Authentication failed'");
  });

  it('R-X3 openssl s_client -starttls pop3 negotiates TLS and the session then answers CAPA and logs in', async () => {
    requireTool('openssl', 'openssl');
    const input = 'CAPA\r\nUSER alice\r\nPASS wonderland\r\nSTAT\r\nQUIT\r\n';
    const r = await run('openssl', ['s_client', '-starttls', 'pop3', '-connect', `127.0.0.1:${t.port}`, '-CAfile', certs.cert, '-verify_return_error', '-quiet', '-crlf'], { input: input.replace(/\r\n/g, '\n') });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\+OK Capability list follows\r?\nTOP\r?\nUSER\r?\n/);
    assert.ok(!/\r?\nSTLS\r?\n/.test(r.stdout), 'no STLS inside TLS');
    assert.match(r.stdout, /\+OK alice has 1 message/);
    assert.match(r.stdout, /\+OK 1 \d+/);
  });

  it("R-S9 fetchmail's NTLM (NTLMv1) is refused even with the right password: only NTLMv2 is accepted", { skip: needProgram('fetchmail', 'fetchmail') }, async () => {
    const home = await mkdtemp(join(tmpdir(), 'poplar-fetchmail-'));
    try {
      const rc = join(home, 'fetchmailrc');
      await writeFile(rc, `poll 127.0.0.1 port ${t.port} protocol pop3 auth ntlm user "alice" password "wonderland" sslproto "" keep mda "/bin/cat"\n`);
      await chmod(rc, 0o600);
      const r = await run('fetchmail', ['-f', rc, '-i', join(home, 'ids'), '--pidfile', join(home, 'pid'), '--nodetach', '-v'], { env: { HOME: home } });
      assert.equal(r.code, 3, `fetchmail AUTHFAIL expected: ${r.stdout}${r.stderr}`);
      await waitFor(() => t.logs.filter((l) => l.event === 'auth_failed' && l.mechanism === 'NTLM' && /NTLMv1/.test(String(l.reason))).length >= 1);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  describe('mpop (GNU SASL)', { skip: needProgram('mpop', 'mpop') }, () => {
    let home: string;
    before(async () => {
      home = await mkdtemp(join(tmpdir(), 'poplar-mpop-'));
    });
    after(() => rm(home, { recursive: true, force: true }));

    async function mpop(auth: string, password: string): Promise<{ run: Run; fetched: string[] }> {
      const dir = join(home, auth + password.length);
      const md = join(dir, 'md');
      for (const sub of ['new', 'cur', 'tmp']) await mkdir(join(md, sub), { recursive: true });
      const rc = join(dir, 'mpoprc');
      await writeFile(rc, [
        'defaults', 'timeout 20', `uidls_file ${join(dir, 'uidls')}`, 'keep on', 'received_header off', `delivery maildir ${md}`,
        'account a', 'host 127.0.0.1', `port ${t.port}`, 'tls off', `auth ${auth}`, 'user alice', `password ${password}`, '',
      ].join('\n'));
      await chmod(rc, 0o600);
      const r = await run('mpop', ['-C', rc, 'a'], { env: { HOME: dir } });
      const files = await readdir(join(md, 'new'));
      return { run: r, fetched: await Promise.all(files.map((f) => readFile(join(md, 'new', f), 'utf8'))) };
    }

    it('R-X4 mpop logs in with SCRAM-SHA-256 and fetches the message; a wrong password is refused', async () => {
      const good = await mpop('scram-sha-256', 'wonderland');
      assert.equal(good.run.code, 0, good.run.stderr);
      assert.deepEqual(good.fetched, [EXPECTED]);
      await waitFor(() => t.logs.some((l) => l.event === 'login' && l.mechanism === 'SCRAM-SHA-256'));
      const bad = await mpop('scram-sha-256', 'wrong');
      assert.notEqual(bad.run.code, 0);
      assert.match(bad.run.stderr, /authentication failed/);
    });

    it('R-K9 mpop logs in with APOP', async () => {
      const good = await mpop('apop', 'wonderland');
      assert.equal(good.run.code, 0, good.run.stderr);
      assert.deepEqual(good.fetched, [EXPECTED]);
      await waitFor(() => t.logs.some((l) => l.event === 'login' && l.mechanism === 'APOP'));
    });

    it("R-S9 mpop's NTLM (libntlm, NTLMv1) is refused even with the right password: only NTLMv2 is accepted", async () => {
      const r = await mpop('ntlm', 'wonderland');
      assert.notEqual(r.run.code, 0);
      assert.deepEqual(r.fetched, []);
      await waitFor(() => t.logs.some((l) => l.event === 'auth_failed' && l.mechanism === 'NTLM' && /NTLMv1/.test(String(l.reason))));
    });
  });
});

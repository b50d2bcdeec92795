/**
 * AUTH (RFC 5034) and APOP over a raw socket: initial responses, `*` cancel, malformed base64,
 * the SASL line limit, identical failures (R-S13), one log line per failure (R-X13), master users
 * (R-X14), bearer tokens (R-X4), the APOP banner (R-K2, R-K9) and UTF8 (R-X5). Real clients
 * drive the same mechanisms in auth-clients.test.ts.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { TokenVerifier } from '../../src/auth/sasl/token-verifier.js';
import { cramContexts } from '../../src/auth/md5-context.js';
import { hashPassword } from '../../src/auth/password.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { testIssuer, type TestIssuer } from '../helpers/oauth.js';
import { startTestServer, waitFor, withServer, type TestServer, TEST_SCRYPT_COST } from '../helpers/test-server.js';

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
const unb64 = (line: string): string => Buffer.from(line.replace(/^\+ ?/, ''), 'base64').toString('latin1');

describe('AUTH', () => {
  let t: TestServer;
  let issuer: TestIssuer;
  before(async () => {
    issuer = await testIssuer();
    t = await startTestServer({
      users: { alice: { password: 'wonderland' }, admin: { password: 'master-key' }, 'chloé': { password: 'pässwörd' } },
      settings: { mechanisms: ['PLAIN', 'LOGIN', 'CRAM-MD5', 'SCRAM-SHA-256', 'NTLM', 'OAUTHBEARER', 'XOAUTH2'], masterUsers: ['admin'] },
      tokens: issuer.verifier,
    });
    await t.store.deliver('alice', Buffer.from('Subject: for alice\r\n\r\nhi\r\n'));
  });
  after(() => t.close());

  it('R-X4 AUTH PLAIN with an initial response logs in', async () => {
    const c = await Pop3Client.connect(t.port);
    assert.match(await c.cmd(`AUTH PLAIN ${b64('\0alice\0wonderland')}`), /^\+OK alice has 1 message/);
    await c.cmd('QUIT');
  });

  it('R-X4 AUTH PLAIN without initial response gets an empty challenge "+ "', async () => {
    const c = await Pop3Client.connect(t.port);
    assert.equal(await c.cmd('AUTH PLAIN'), '+ ');
    assert.match(await c.cmd(b64('\0alice\0wonderland')), /^\+OK/);
    await c.cmd('QUIT');
  });

  it('R-X4 "*" cancels an exchange with -ERR and the session goes on', async () => {
    const c = await Pop3Client.connect(t.port);
    assert.equal(unb64(await c.cmd('AUTH LOGIN')), 'Username:');
    assert.equal(await c.cmd('*'), '-ERR Authentication cancelled');
    assert.match(await c.cmd(`AUTH PLAIN ${b64('\0alice\0wonderland')}`), /^\+OK/);
    await c.cmd('QUIT');
  });

  it('R-X4 malformed base64 is refused with -ERR, in the initial response and in a continuation', async () => {
    const c = await Pop3Client.connect(t.port);
    assert.equal(await c.cmd('AUTH PLAIN not*base64'), '-ERR Malformed SASL response, authentication aborted');
    assert.equal(await c.cmd('AUTH LOGIN'), `+ ${b64('Username:')}`);
    assert.equal(await c.cmd('YWxpY2U'), '-ERR Malformed SASL response, authentication aborted');
    assert.match(await c.cmd('CAPA'), /^\+OK/, 'back to commands');
    c.close();
  });

  it('R-S10 R-X13 malformed SASL responses count and are logged as failed logins; too many close the session', async () => {
    const seen = t.logs.length;
    const c = await Pop3Client.connect(t.port);
    assert.equal(await c.cmd('AUTH PLAIN !!'), '-ERR Malformed SASL response, authentication aborted');
    assert.equal(await c.cmd(`AUTH PLAIN ${b64('no-nuls-here')}`), '-ERR Malformed SASL response, authentication aborted');
    assert.equal(await c.cmd('AUTH PLAIN !!'), '-ERR [AUTH] Malformed SASL response, authentication aborted, too many failures, closing connection');
    await c.closed();
    // Three in one session (this one): with workers, another worker may still log an earlier test's failure.
    const perSession = (): number[] => {
      const counts = new Map<unknown, number>();
      for (const l of t.logs.slice(seen)) if (l.event === 'auth_failed' && l.mechanism === 'PLAIN') counts.set(l.session, (counts.get(l.session) ?? 0) + 1);
      return [...counts.values()];
    };
    await waitFor(() => perSession().includes(3));
  });

  it('R-S10 regression: "*" cancels and over-long SASL responses were not counted; they now count toward max_auth_failures and close the session at the cap', async () => {
    const long = 'A'.repeat(20_000);
    const c = await Pop3Client.connect(t.port);
    assert.equal(await c.cmd('AUTH LOGIN'), `+ ${b64('Username:')}`);
    assert.equal(await c.cmd('*'), '-ERR Authentication cancelled');
    assert.equal(await c.cmd('AUTH PLAIN'), '+ ');
    assert.equal(await c.cmd(long), '-ERR SASL response too long, authentication aborted');
    assert.equal(await c.cmd('AUTH SCRAM-SHA-256'), '+ ');
    assert.equal(await c.cmd('*'), '-ERR [AUTH] Authentication cancelled, too many failures, closing connection');
    await c.closed();
    const d = await Pop3Client.connect(t.port);
    for (let i = 0; i < 2; i++) {
      assert.equal(await d.cmd('AUTH PLAIN'), '+ ');
      assert.equal(await d.cmd(long), '-ERR SASL response too long, authentication aborted');
    }
    assert.equal(await d.cmd('AUTH PLAIN'), '+ ');
    assert.equal(await d.cmd(long), '-ERR [AUTH] SASL response too long, authentication aborted, too many failures, closing connection');
    await d.closed();
  });

  it('R-X13 regression: auth_failed lines carried "ip" twice (the session logger\'s and the event\'s); now once', async () => {
    const seen = t.logText().length;
    const c = await Pop3Client.connect(t.port);
    assert.equal(await c.login('alice', 'wrong'), '-ERR [AUTH] Authentication failed');
    assert.equal(await c.cmd(`AUTH PLAIN ${b64('\0ghost\0wrong')}`), '-ERR [AUTH] Authentication failed');
    assert.equal(await c.cmd('AUTH PLAIN'), '+ ');
    assert.match(await c.cmd('A'.repeat(20_000)), /^-ERR \[AUTH\] SASL response too long/);
    await c.closed();
    // This connection's three lines, by its session id: with workers, another worker may still be
    // logging an earlier test's failure.
    const mine = (): string[] => {
      const failed = t.logText().slice(seen).split('\n').filter((l) => l.includes('"event":"auth_failed"'));
      const ghost = failed.find((l) => l.includes('"user":"ghost"'));
      const session = ghost === undefined ? undefined : String((JSON.parse(ghost) as Record<string, unknown>).session);
      return failed.filter((l) => session !== undefined && (JSON.parse(l) as Record<string, unknown>).session === session);
    };
    await waitFor(() => mine().length === 3);
    const lines = mine();
    for (const line of lines) {
      assert.equal(line.match(/"ip":/g)?.length, 1, line);
      assert.equal((JSON.parse(line) as Record<string, unknown>).ip, '127.0.0.1');
    }
  });

  it('R-X4 an unknown or unconfigured mechanism is refused; AUTH alone lists the mechanisms', async () => {
    const c = await Pop3Client.connect(t.port);
    assert.equal(await c.cmd('AUTH GSSAPI'), '-ERR Unsupported authentication mechanism GSSAPI');
    assert.equal(await c.cmd('AUTH EXTERNAL'), '-ERR Unsupported authentication mechanism EXTERNAL');
    const list = await c.multi('AUTH');
    assert.deepEqual(list.lines, ['PLAIN', 'LOGIN', 'CRAM-MD5', 'SCRAM-SHA-256', 'NTLM', 'OAUTHBEARER', 'XOAUTH2']);
    c.close();
  });

  it('R-S13 a failed AUTH is identical for an unknown user and a wrong password, for every mechanism', async () => {
    const c = await Pop3Client.connect(t.port);
    const plainWrong = await c.cmd(`AUTH PLAIN ${b64('\0alice\0nope')}`);
    const plainGhost = await c.cmd(`AUTH PLAIN ${b64('\0ghost\0nope')}`);
    assert.equal(plainWrong, '-ERR [AUTH] Authentication failed');
    assert.equal(plainGhost, plainWrong);
    c.close();
    // CRAM-MD5: a digest with a wrong secret, for a real and an unknown user.
    for (const user of ['alice', 'ghost']) {
      const d = await Pop3Client.connect(t.port);
      const challenge = unb64(await d.cmd('AUTH CRAM-MD5'));
      const digest = createHash('md5').update(challenge).digest('hex');
      assert.equal(await d.cmd(b64(`${user} ${digest}`)), '-ERR [AUTH] Authentication failed');
      d.close();
    }
  });

  it('R-S13 SCRAM-SHA-256: an unknown user sees a server-first message shaped like a real user\'s, then the same failure', async () => {
    const shapes: string[] = [];
    for (const user of ['alice', 'ghost']) {
      const c = await Pop3Client.connect(t.port);
      await c.cmd('AUTH SCRAM-SHA-256');
      const first = unb64(await c.cmd(b64(`n,,n=${user},r=clientnonce`)));
      shapes.push(first.replace(/r=clientnonce[^,]+,s=[^,]+,/, 'r=N,s=S,'));
      const nonce = /^r=([^,]+)/.exec(first)![1]!;
      assert.equal(await c.cmd(b64(`c=biws,r=${nonce},p=${b64(Buffer.alloc(32, 1))}`)), '-ERR [AUTH] Authentication failed');
      c.close();
    }
    assert.equal(shapes[0], shapes[1]);
    assert.equal(shapes[0], 'r=N,s=S,i=4096');
  });

  it('R-X13 every failed AUTH is logged once with user, IP and mechanism, never the secret', async () => {
    const seen = t.logs.length;
    const c = await Pop3Client.connect(t.port);
    await c.cmd(`AUTH PLAIN ${b64('\0alice\0Very-Secret-77')}`);
    c.close();
    const mine = (): Array<Record<string, unknown>> =>
      t.logs.slice(seen).filter((l) => l.event === 'auth_failed' && l.mechanism === 'PLAIN' && l.user === 'alice');
    // This session's end (by its id): with workers, another worker may still log an earlier test's session_end.
    await waitFor(() => mine().length > 0);
    const session = mine()[0]!.session;
    await waitFor(() => t.logs.slice(seen).some((l) => l.event === 'session_end' && l.session === session));
    const lines = mine();
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.ip, '127.0.0.1');
    assert.ok(!t.logText().includes('Very-Secret-77'));
    assert.ok(!t.logText().includes(b64('\0alice\0Very-Secret-77')));
  });

  it('R-X4 SASL continuation lines are not held to the command limit: a 6 KiB token line is read whole', async () => {
    const c = await Pop3Client.connect(t.port);
    assert.equal(await c.cmd('AUTH XOAUTH2'), '+ ');
    const big = b64(`user=alice\x01auth=Bearer ${'x'.repeat(4500)}\x01\x01`);
    assert.ok(big.length > 6000);
    const error = await c.cmd(big);
    assert.match(unb64(error), /"status":"401"/, 'an error challenge, not a line-length refusal');
    assert.equal(await c.cmd(''), '-ERR [AUTH] Authentication failed');
    assert.equal(await c.cmd('AUTH XOAUTH2'), '+ ');
    assert.equal(await c.cmd('A'.repeat(20_000)), '-ERR SASL response too long, authentication aborted');
    c.close();
  });

  it('R-X4 OAUTHBEARER and XOAUTH2 accept a valid JWT of a trusted issuer', async () => {
    const token = await issuer.token('alice');
    const c = await Pop3Client.connect(t.port);
    assert.match(await c.cmd(`AUTH OAUTHBEARER ${b64(`n,a=alice,\x01host=localhost\x01port=110\x01auth=Bearer ${token}\x01\x01`)}`), /^\+OK alice/);
    await c.cmd('QUIT');
    const d = await Pop3Client.connect(t.port);
    assert.equal(await d.cmd('AUTH XOAUTH2'), '+ ');
    assert.match(await d.cmd(b64(`user=alice\x01auth=Bearer ${token}\x01\x01`)), /^\+OK alice/);
    await d.cmd('QUIT');
  });

  it('R-X4 forged, expired, foreign and mismatched tokens fail with the RFC 7628 error exchange', async () => {
    const bad = [
      ['forged signature', await issuer.forged('alice'), 'alice'],
      ['expired', await issuer.token('alice', { exp: Math.floor(Date.now() / 1000) - 60 }), 'alice'],
      ['unknown issuer', await issuer.token('alice', { iss: 'https://evil.test' }), 'alice'],
      ['token of another user', await issuer.token('admin'), 'alice'],
      ['not a JWT', 'opaque-token', 'alice'],
    ] as const;
    for (const [why, token, user] of bad) {
      const c = await Pop3Client.connect(t.port);
      const challenge = await c.cmd(`AUTH OAUTHBEARER ${b64(`n,a=${user},\x01auth=Bearer ${token}\x01\x01`)}`);
      assert.deepEqual(JSON.parse(unb64(challenge)), { status: 'invalid_token', schemes: 'bearer' }, why);
      assert.equal(await c.cmd(b64('\x01')), '-ERR [AUTH] Authentication failed', why);
      c.close();
    }
  });

  it('R-X4 regression: a bearer token without exp was accepted and never expired; now it is refused, and one with exp in the future accepted', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const dir = await mkdtemp(join(tmpdir(), 'poplar-jwks-'));
    try {
      const jwks = join(dir, 'jwks.json');
      await writeFile(jwks, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'ES256' }] }));
      const verifier = await TokenVerifier.create({ issuers: [{ issuer: 'https://exp.test', jwks }], audience: 'pop3.test', userClaim: 'sub' });
      const sign = (jwt: SignJWT): Promise<string> =>
        jwt.setProtectedHeader({ alg: 'ES256', kid: 'k' }).setIssuer('https://exp.test').setAudience('pop3.test').setIssuedAt().sign(privateKey);
      const forever = await sign(new SignJWT({ sub: 'alice' }));
      const fresh = await sign(new SignJWT({ sub: 'alice' }).setExpirationTime('5m'));
      assert.equal((await verifier.verify(forever)).ok, false);
      await withServer({ tokens: verifier, settings: { mechanisms: ['OAUTHBEARER', 'XOAUTH2'] } }, async (s) => {
        const c = await Pop3Client.connect(s.port);
        assert.deepEqual(JSON.parse(unb64(await c.cmd(`AUTH OAUTHBEARER ${b64(`n,,\x01auth=Bearer ${forever}\x01\x01`)}`))), { status: 'invalid_token', schemes: 'bearer' });
        assert.equal(await c.cmd(b64('\x01')), '-ERR [AUTH] Authentication failed');
        assert.equal(await c.cmd('AUTH XOAUTH2'), '+ ');
        assert.match(unb64(await c.cmd(b64(`user=alice\x01auth=Bearer ${forever}\x01\x01`))), /"status":"401"/);
        assert.equal(await c.cmd(''), '-ERR [AUTH] Authentication failed');
        assert.match(await c.cmd(`AUTH OAUTHBEARER ${b64(`n,,\x01auth=Bearer ${fresh}\x01\x01`)}`), /^\+OK alice/);
        await c.cmd('QUIT');
        // With workers, a log line may reach the test after the reply did.
        await waitFor(() => s.logs.filter((l) => l.event === 'auth_failed').length >= 2, 5000, 'both auth_failed lines');
        const reasons = s.logs.filter((l) => l.event === 'auth_failed').map((l) => l.reason);
        assert.deepEqual(reasons, Array(2).fill('token rejected: ERR_JWT_CLAIM_VALIDATION_FAILED'));
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('R-X4 an issuer\'s keys can come from a JWKS URL; plain http is refused except to localhost', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'url-key', alg: 'ES256' }] });
    const http = createHttpServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(jwks));
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    try {
      const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/jwks.json`;
      const verifier = await TokenVerifier.create({ issuers: [{ issuer: 'https://url.test', jwks: url }], audience: '', userClaim: 'sub' });
      const token = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'ES256', kid: 'url-key' })
        .setIssuer('https://url.test').setExpirationTime('5m').sign(privateKey);
      assert.deepEqual(await verifier.verify(token), { ok: true, user: 'alice' });
      await assert.rejects(
        TokenVerifier.create({ issuers: [{ issuer: 'x', jwks: 'http://keys.example.org/jwks.json' }], audience: '', userClaim: 'sub' }),
        /must use https/,
      );
    } finally {
      http.close();
    }
  });

  it('R-X14 a master user opens another user\'s maildrop with its own password (PLAIN authzid, USER name*master), audited', async () => {
    const c = await Pop3Client.connect(t.port);
    assert.match(await c.cmd(`AUTH PLAIN ${b64('alice\0admin\0master-key')}`), /^\+OK alice has 1 message/);
    await c.cmd('QUIT');
    const d = await Pop3Client.connect(t.port);
    assert.match(await d.login('alice*admin', 'master-key'), /^\+OK alice has 1 message/);
    await d.cmd('QUIT');
    await waitFor(() => t.logs.filter((l) => l.event === 'master_login' && l.master === 'admin' && l.user === 'alice').length === 2);
  });

  it('R-X14 a user who is not a master cannot act as another, and fails like a wrong password', async () => {
    const c = await Pop3Client.connect(t.port);
    assert.equal(await c.cmd(`AUTH PLAIN ${b64('admin\0alice\0wonderland')}`), '-ERR [AUTH] Authentication failed');
    assert.equal(await c.cmd(`AUTH PLAIN ${b64('ghost\0admin\0master-key')}`), '-ERR [AUTH] Authentication failed');
    c.close();
  });

  it('R-X5 UTF8 is advertised and acknowledged; UTF-8 names and passwords work through SASL', async () => {
    const c = await Pop3Client.connect(t.port);
    assert.ok((await c.multi('CAPA')).lines.includes('UTF8 USER'));
    assert.equal(await c.cmd('UTF8'), '+OK UTF8 enabled');
    assert.match(await c.cmd(`AUTH PLAIN ${b64(Buffer.from('\0chloé\0pässwörd', 'utf8'))}`), /^\+OK chloé has 0 messages/);
    assert.match(await c.cmd('UTF8'), /^-ERR /, 'not after login');
    await c.cmd('QUIT');
  });
});

describe('Dovecot passwd-file credentials', () => {
  it('R-X8 users with Dovecot hashes log in with USER/PASS and PLAIN; a {CRAM-MD5} field serves CRAM-MD5', async () => {
    const records = [
      // openssl passwd -6 -salt saltsalt password
      { name: 'sha', password: '{SHA512-CRYPT}$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/', grants: [] },
      // libxcrypt bcrypt of "password"
      { name: 'blf', password: '{BLF-CRYPT}$2y$04$p5h4OSpqkRW8rxYqxkQRtu2LnW6JiYwgkSheqfeKg7QBAJbMYKLgS', grants: [] },
      { name: 'cram', password: `{CRAM-MD5}${cramContexts(Buffer.from('password')).toString('hex')}`, grants: [] },
    ];
    await withServer({ records }, async (s) => {
      for (const name of ['sha', 'blf', 'cram']) {
        const c = await Pop3Client.connect(s.port);
        assert.match(await c.login(name, 'password'), /^\+OK/, `${name} USER/PASS`);
        await c.cmd('QUIT');
        const d = await Pop3Client.connect(s.port);
        assert.match(await d.cmd(`AUTH PLAIN ${b64(`\0${name}\0password`)}`), /^\+OK/, `${name} PLAIN`);
        await d.cmd('QUIT');
      }
      const c = await Pop3Client.connect(s.port);
      const challenge = unb64(await c.cmd('AUTH CRAM-MD5'));
      const digest = createHmac('md5', 'password').update(challenge).digest('hex');
      assert.match(await c.cmd(b64(`cram ${digest}`)), /^\+OK cram/);
      await c.cmd('QUIT');
      const e = await Pop3Client.connect(s.port);
      await e.cmd('AUTH CRAM-MD5');
      assert.equal(await e.cmd(b64(`sha ${digest}`)), '-ERR [AUTH] Authentication failed', 'no CRAM credential: fails like a wrong password');
      e.close();
    });
  });
});

describe('APOP', () => {
  it('R-K2 the greeting carries a <pid.clock@host> banner only when APOP is enabled, new for each connection', async () => {
    await withServer({ settings: { apop: true } }, async (s) => {
      const a = await Pop3Client.connect(s.port);
      const b = await Pop3Client.connect(s.port);
      const banner = /^\+OK POP3 server ready (<\d+\.\d+[0-9a-f]*@test\.example>)$/;
      assert.match(await a.greeting, banner);
      assert.notEqual(banner.exec(await a.greeting)![1], banner.exec(await b.greeting)![1]);
      a.close();
      b.close();
    });
    await withServer({}, async (s) => {
      const c = await Pop3Client.connect(s.port);
      assert.equal(await c.greeting, '+OK POP3 server ready');
      assert.equal(await c.cmd('APOP alice 0123456789abcdef0123456789abcdef'), '-ERR [AUTH] APOP is not enabled on this server, use USER and PASS');
      c.close();
    });
  });

  it('R-K9 APOP logs in with MD5(banner + secret); a wrong digest, an unknown user and a user without a stored secret fail alike', async () => {
    const hashOnly = { name: 'hashonly', password: await hashPassword('secret', { cost: TEST_SCRYPT_COST }), grants: [] };
    await withServer({ settings: { apop: true }, records: [hashOnly] }, async (s) => {
      const digest = async (c: Pop3Client, secret: string): Promise<string> => {
        const banner = /<[^>]+>/.exec(await c.greeting)![0];
        return createHash('md5').update(banner + secret).digest('hex');
      };
      const c = await Pop3Client.connect(s.port);
      assert.match(await c.cmd(`APOP alice ${await digest(c, 'wonderland')}`), /^\+OK alice has 0 messages/);
      await c.cmd('QUIT');
      const replies: string[] = [];
      for (const [user, secret] of [['alice', 'wrong'], ['ghost', 'wonderland'], ['hashonly', 'secret']] as const) {
        const d = await Pop3Client.connect(s.port);
        replies.push(await d.cmd(`APOP ${user} ${await digest(d, secret)}`));
        d.close();
      }
      assert.deepEqual(replies, Array(3).fill('-ERR [AUTH] Authentication failed'));
    });
  });
});

/**
 * TLS over real sockets (R-X3, R-S5) and the plaintext policy (R-S14): implicit TLS, STLS with the
 * STARTTLS command-injection defence, the cases STLS is refused, the minimum TLS version, and
 * certificate reload. The policy tests make 127.0.0.1 untrusted (`trustedNetworks: []`), since
 * the default trusts loopback.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { makeSelfSigned } from '../../src/net/self-signed.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { testCerts } from '../helpers/certs.js';
import { startTestServer, waitFor, withServer, type TestServer } from '../helpers/test-server.js';

/** 'secure' when the handshake succeeds, else the client's error message. */
async function handshake(port: number, opts: ConnectionOptions): Promise<string> {
  const socket = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...opts });
  return new Promise((resolve) => {
    socket.once('secureConnect', () => {
      socket.destroy();
      resolve('secure');
    });
    socket.once('error', (e) => resolve(e.message));
  });
}

const REFUSED = /protocol|version|alert|disconnected before secure TLS/i;

describe('TLS', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ tls: true, users: { alice: { password: 'wonderland' } } });
    await t.store.deliver('alice', Buffer.from('Subject: hi\r\n\r\nhello\r\n'));
  });
  after(() => t.close());

  it('R-X3 plaintext pipelined behind STLS in the same write is discarded, never executed', async () => {
    const c = await Pop3Client.connect(t.port);
    c.write('STLS\r\nCAPA\r\n');
    assert.equal(await c.line(), '+OK Begin TLS negotiation');
    await c.upgrade();
    // If the injected CAPA had run, its reply would arrive over TLS before the reply to anything
    // sent now: the CAPA and STAT sent here must get exactly their own replies, in order.
    const capa = await c.multi('CAPA');
    assert.equal(capa.status, '+OK Capability list follows');
    assert.match(await c.cmd('STAT'), /^-ERR/, 'the reply after CAPA is STAT\'s, not a second CAPA');
    assert.equal(c.rest(), '', 'exactly one CAPA reply');
    await waitFor(() => t.logs.some((l) => l.event === 'stls_plaintext_discarded' && l.octets === 6));
    await c.cmd('QUIT');
  });

  it('R-X3 a USER sent in plaintext before STLS does not carry over into the TLS session', async () => {
    const c = await Pop3Client.connect(t.port);
    assert.match(await c.cmd('USER alice'), /^\+OK/);
    await c.cmd('STLS');
    await c.upgrade();
    assert.equal(await c.cmd('PASS wonderland'), '-ERR Send USER first');
    assert.match(await c.login('alice', 'wonderland'), /^\+OK alice has 1 message/);
    await c.cmd('QUIT');
  });

  it('R-X3 STLS is refused inside TLS: twice, and on the implicit-TLS port', async () => {
    const c = await Pop3Client.connect(t.port);
    await c.cmd('STLS');
    await c.upgrade();
    assert.equal(await c.cmd('STLS'), '-ERR Already using TLS');
    assert.match(await c.login('alice', 'wonderland'), /^\+OK/, 'the session goes on');
    await c.cmd('QUIT');
    const s = await Pop3Client.connectTls(t.tlsPort);
    assert.equal(await s.cmd('STLS'), '-ERR Already using TLS');
    s.close();
  });

  it('R-X3 STLS is refused after login', async () => {
    const c = await Pop3Client.connect(t.port);
    await c.login('alice', 'wonderland');
    assert.match(await c.cmd('STLS'), /^-ERR /);
    assert.match(await c.cmd('STAT'), /^\+OK 1 /, 'still in TRANSACTION, in plaintext');
    await c.cmd('QUIT');
  });

  it('R-S5 R-X3 implicit TLS: greeting, login and retrieval over TLS; CAPA offers no STLS there', async () => {
    const c = await Pop3Client.connectTls(t.tlsPort);
    assert.match(await c.greeting, /^\+OK POP3 server ready/);
    const capa = await c.multi('CAPA');
    assert.ok(!capa.lines.includes('STLS'));
    assert.ok(capa.lines.includes('USER'));
    await c.login('alice', 'wonderland');
    assert.deepEqual((await c.multi('RETR 1')).lines, ['Subject: hi', '', 'hello']);
    await c.cmd('QUIT');
  });

  it('R-X3 TLS 1.2 is the default minimum: a TLS 1.1 client is refused, TLS 1.2 and 1.3 work', async () => {
    for (const v of ['TLSv1.2', 'TLSv1.3'] as const) {
      const c = await Pop3Client.connectTls(t.tlsPort, { minVersion: v, maxVersion: v });
      assert.equal((c.socket as import('node:tls').TLSSocket).getProtocol(), v);
      c.close();
    }
    assert.match(await handshake(t.tlsPort, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }), REFUSED);
  });

  it('R-X3 the minimum version is configurable: with TLSv1.3 a TLS 1.2 client is refused', async () => {
    await withServer({ tls: { minVersion: 'TLSv1.3' } }, async (s) => {
      assert.match(await handshake(s.tlsPort, { maxVersion: 'TLSv1.2' }), REFUSED);
      assert.equal(await handshake(s.tlsPort, { minVersion: 'TLSv1.3' }), 'secure');
    });
  });

  it('R-X3 certificates are reloaded without a restart: new connections get the new one, live ones go on', async () => {
    const certs = await testCerts();
    const dir = await mkdtemp(join(tmpdir(), 'poplar-reload-'));
    try {
      const cert = join(dir, 'cert.pem');
      const key = join(dir, 'key.pem');
      await copyFile(certs.cert, cert);
      await copyFile(certs.key, key);
      await withServer({ tls: { cert, key } }, async (s) => {
        const before = await Pop3Client.connectTls(s.tlsPort);
        const fp1 = (before.socket as import('node:tls').TLSSocket).getPeerCertificate().fingerprint256;
        await makeSelfSigned({ certPath: cert, keyPath: key, names: ['renewed.example'], days: 1 });
        await s.reload();
        const after = await Pop3Client.connectTls(s.tlsPort);
        const peer = (after.socket as import('node:tls').TLSSocket).getPeerCertificate();
        assert.notEqual(peer.fingerprint256, fp1);
        assert.equal(peer.subject.CN, 'renewed.example');
        assert.match(await before.cmd('CAPA'), /^\+OK/, 'the session opened before the reload goes on');
        before.close();
        after.close();
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('plaintext policy', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ tls: true, trustedNetworks: [], users: { alice: { password: 'wonderland' } } });
  });
  after(() => t.close());

  it('R-S14 without TLS, USER/PASS, PLAIN and LOGIN are refused alike for every user, with a hint to use STLS', async () => {
    const c = await Pop3Client.connect(t.port);
    const refusal = '-ERR [AUTH] Plaintext authentication is not allowed on an unencrypted connection, use STLS first';
    assert.equal(await c.cmd('USER alice'), refusal);
    assert.equal(await c.cmd('USER nobody-at-all'), refusal);
    assert.equal(await c.cmd('PASS wonderland'), refusal);
    assert.equal(await c.cmd(`AUTH PLAIN ${Buffer.from('\0alice\0wonderland').toString('base64')}`), refusal);
    assert.equal(await c.cmd(`AUTH PLAIN ${Buffer.from('\0ghost\0x').toString('base64')}`), refusal);
    assert.equal(await c.cmd('AUTH LOGIN'), refusal);
    c.close();
  });

  it('R-S14 R-X1 CAPA before STLS hides USER, PLAIN and LOGIN and offers STLS; after STLS the reverse', async () => {
    const c = await Pop3Client.connect(t.port);
    const plain = await c.multi('CAPA');
    assert.ok(!plain.lines.includes('USER'));
    assert.ok(plain.lines.includes('STLS'));
    const sasl = plain.lines.find((l) => l.startsWith('SASL '))!.split(' ');
    assert.ok(!sasl.includes('PLAIN') && !sasl.includes('LOGIN'));
    assert.ok(sasl.includes('SCRAM-SHA-256') && sasl.includes('CRAM-MD5'), 'challenge mechanisms stay usable');
    await c.cmd('STLS');
    await c.upgrade();
    const secure = await c.multi('CAPA');
    assert.ok(secure.lines.includes('USER'));
    assert.ok(!secure.lines.includes('STLS'));
    assert.ok(secure.lines.find((l) => l.startsWith('SASL '))!.split(' ').includes('PLAIN'));
    assert.match(await c.login('alice', 'wonderland'), /^\+OK/);
    await c.cmd('QUIT');
  });

  it('R-S14 without any TLS configured, the hint names POP3S instead of STLS, and CAPA offers no STLS', async () => {
    await withServer({ trustedNetworks: [] }, async (s) => {
      const c = await Pop3Client.connect(s.port);
      assert.equal(await c.cmd('USER alice'), '-ERR [AUTH] Plaintext authentication is not allowed on an unencrypted connection, connect with TLS (POP3S)');
      assert.ok(!(await c.multi('CAPA')).lines.includes('STLS'));
      assert.equal(await c.cmd('STLS'), '-ERR STLS is not available on this server');
      c.close();
    });
  });

  it('R-S14 a trusted network may log in without TLS (loopback is trusted by default)', async () => {
    await withServer({ tls: true, trustedNetworks: ['127.0.0.0/8'] }, async (s) => {
      const c = await Pop3Client.connect(s.port);
      assert.match(await c.login('alice', 'wonderland'), /^\+OK/);
      await c.cmd('QUIT');
    });
  });
});

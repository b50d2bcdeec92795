/**
 * Issue #5 over real sockets: connection caps in total, per IP and per user (R-X9) hold while
 * the server keeps serving others; a login must finish in time however a client trickles
 * commands (R-X9); PROXY v1/v2 headers are believed from trusted proxies only, over plain POP3
 * and implicit TLS (R-X13); IPv6 listeners and a configurable greeting (R-X13).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { connect } from 'node:net';
import { once } from 'node:events';
import { Pop3Client } from '../helpers/pop3-client.js';
import { waitFor, withServer } from '../helpers/test-server.js';
import { testCerts } from '../helpers/certs.js';
import { readFile } from 'node:fs/promises';

const limits = (total: number, ip: number, user: number) => ({
  limits: { maxConnections: total, maxConnectionsPerIp: ip, maxConnectionsPerUser: user },
});

describe('connection limits', () => {
  it('R-X9 a per-IP cap refuses the next connection with -ERR [SYS/TEMP] and keeps serving', async () => {
    await withServer({ operations: limits(0, 3, 0) }, async (t) => {
      const open = await Promise.all([1, 2, 3].map(() => Pop3Client.connect(t.port)));
      const s = connect({ port: t.port, host: '127.0.0.1' });
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      await once(s, 'close');
      assert.equal(got, '-ERR [SYS/TEMP] Too many connections from your address, try again later\r\n');
      assert.match(await open[0]!.login('alice', 'wonderland'), /^\+OK/, 'admitted sessions go on');
      await open[0]!.cmd('QUIT');
      await open[0]!.closed();
      await waitFor(() => t.server.sessionCount === 2);
      const again = await Pop3Client.connect(t.port);
      assert.match(await again.cmd('CAPA'), /^\+OK/, 'a slot freed is a slot usable');
      for (const c of [...open, again]) c.close();
      await waitFor(() => t.logs.some((l) => l.event === 'connection_refused' && l.reason === 'ip'));
    });
  });

  it('R-X9 a total cap refuses connections beyond it', async () => {
    await withServer({ operations: limits(2, 0, 0) }, async (t) => {
      const a = await Pop3Client.connect(t.port);
      const b = await Pop3Client.connect(t.port);
      const s = connect({ port: t.port, host: '127.0.0.1' });
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      await once(s, 'close');
      assert.match(got, /^-ERR \[SYS\/TEMP\] Too many connections, try again later/);
      a.close();
      b.close();
    });
  });

  it('R-X9 a per-user cap answers one login more with -ERR [IN-USE]; a QUIT frees a slot', async () => {
    await withServer({ operations: limits(0, 0, 2) }, async (t) => {
      const a = await Pop3Client.connect(t.port);
      const b = await Pop3Client.connect(t.port);
      const c = await Pop3Client.connect(t.port);
      assert.match(await a.login('alice', 'wonderland'), /^\+OK/);
      assert.match(await b.login('alice', 'wonderland'), /^\+OK/);
      assert.equal(await c.login('alice', 'wonderland'), '-ERR [IN-USE] Too many sessions for alice, try again later');
      await a.cmd('QUIT');
      await a.closed();
      await waitFor(() => t.server.sessionCount === 2);
      assert.match(await c.login('alice', 'wonderland'), /^\+OK/);
      b.close();
      c.close();
    });
  });

  it('R-X9 a client that vanishes in the middle of a SASL exchange frees its slot', async () => {
    // Regression: a session waiting for a SASL response never ended when the socket closed
    // without a FIN (a reset), so its connection slot leaked and shutdown hung.
    await withServer({ operations: limits(0, 2, 0) }, async (t) => {
      for (let i = 0; i < 3; i++) {
        const s = connect({ port: t.port, host: '127.0.0.1' });
        await once(s, 'connect');
        let got = '';
        s.on('data', (d: Buffer) => (got += d.toString()));
        s.write('AUTH PLAIN\r\n');
        await waitFor(() => got.includes('\r\n+ '));
        s.resetAndDestroy();
        await waitFor(() => t.server.sessionCount === 0, 3000);
      }
      const c = await Pop3Client.connect(t.port);
      assert.match(await c.login('alice', 'wonderland'), /^\+OK/, 'slots were given back');
      await c.cmd('QUIT');
    });
  });

  it('R-X9 a client trickling bytes of a line that never ends is closed by the idle timer', async () => {
    await withServer({ settings: { timeoutUnauthenticatedMs: 300 } }, async (t) => {
      const s = connect({ port: t.port, host: '127.0.0.1' });
      await once(s, 'connect');
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      const closed = once(s, 'close');
      const started = Date.now();
      const drip = setInterval(() => s.write('U'), 50); // bytes keep coming, a command never does
      await closed;
      clearInterval(drip);
      assert.ok(Date.now() - started < 3000, 'closed within the timer and its grace');
      assert.match(got, /-ERR Disconnected for inactivity\r\n$/);
    });
  });

  it('R-X9 a client trickling commands must still log in within the login timeout', async () => {
    await withServer({ settings: { loginTimeoutMs: 400, timeoutUnauthenticatedMs: 60_000 } }, async (t) => {
      const c = await Pop3Client.connect(t.port);
      // A command every 100 ms, well inside the 400 ms: only a login timeout that commands do not
      // reset can close the session while the client still trickles (the notice comes in place
      // of a CAPA reply), however slowly this machine runs.
      let notice = '';
      for (let i = 0; i < 100 && notice === ''; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const reply = await c.multi('CAPA').catch(() => undefined);
        if (reply === undefined) break;
        if (reply.status.startsWith('-ERR')) notice = reply.status;
      }
      assert.equal(notice, '-ERR Disconnected for inactivity', 'closed while the client still sent commands');
      await c.closed();
    });
  });
});

describe('PROXY protocol and listeners', () => {
  it('R-X13 a PROXY v1 header from a trusted proxy gives the session the real client address', async () => {
    // The plaintext policy (R-S14) applies to the real address too: 192.0.2.0/24 is trusted here.
    await withServer({ operations: { proxyNetworks: ['127.0.0.0/8'] }, trustedNetworks: ['192.0.2.0/24'] }, async (t) => {
      const s = connect({ port: t.port, host: '127.0.0.1' });
      await once(s, 'connect');
      s.write('PROXY TCP4 192.0.2.77 198.51.100.1 40000 110\r\nUSER alice\r\nPASS nope\r\n');
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      await waitFor(() => got.includes('-ERR [AUTH]'));
      s.destroy();
      await waitFor(() => t.logs.some((l) => l.event === 'auth_failed'));
      assert.equal(t.logs.find((l) => l.event === 'auth_failed')!.ip, '192.0.2.77');
    });
  });

  it('R-X13 a PROXY v2 header works before implicit TLS, the handshake bytes in the same write', async () => {
    await withServer({ tls: true, operations: { proxyNetworks: ['127.0.0.1/32'] } }, async (t) => {
      const certs = await testCerts();
      const raw = connect({ port: t.tlsPort, host: '127.0.0.1' });
      await once(raw, 'connect');
      // v2 signature, PROXY over TCP/IPv4, 12 octets: 192.0.2.77:40000 -> 198.51.100.1:995
      const head = Buffer.from(['0d0a0d0a000d0a515549540a', '2111000c', 'c000024d', 'c6336401', '9c40', '03e3'].join(''), 'hex');
      raw.cork(); // the header and the ClientHello leave in one segment
      raw.write(head);
      const secure = tlsConnect({ socket: raw, ca: await readFile(certs.cert), servername: 'localhost' });
      process.nextTick(() => raw.uncork());
      await once(secure, 'secureConnect');
      const c = { buf: '' };
      secure.on('data', (d: Buffer) => (c.buf += d.toString()));
      await waitFor(() => c.buf.includes('\r\n'));
      assert.match(c.buf, /^\+OK/);
      secure.write('USER alice\r\nPASS wrong\r\n');
      await waitFor(() => t.logs.some((l) => l.event === 'auth_failed'));
      assert.equal(t.logs.find((l) => l.event === 'auth_failed')!.ip, '192.0.2.77');
      secure.destroy();
    });
  });

  it('R-X13 from an untrusted peer a PROXY line is just an unknown command', async () => {
    await withServer({ operations: { proxyNetworks: ['10.0.0.0/8'] } }, async (t) => {
      const c = await Pop3Client.connect(t.port);
      assert.equal(await c.cmd('PROXY TCP4 192.0.2.77 198.51.100.1 40000 110'), '-ERR Unknown command');
      c.close();
    });
  });

  it('R-X13 a trusted proxy that sends no valid header is disconnected', async () => {
    await withServer({ operations: { proxyNetworks: ['127.0.0.0/8'] } }, async (t) => {
      const s = connect({ port: t.port, host: '127.0.0.1' });
      await once(s, 'connect');
      s.write('USER alice\r\n');
      await once(s, 'close');
      await waitFor(() => t.logs.some((l) => l.event === 'proxy_refused'));
    });
  });

  it('R-X13 R-S5 an IPv6 listener serves, and the greeting is configurable', async () => {
    await withServer({ host: '::1', operations: { greeting: 'Welcome to example.org mail' } }, async (t) => {
      const c = await Pop3Client.connect(t.port, '::1');
      assert.equal(await c.greeting, '+OK Welcome to example.org mail');
      assert.match(await c.login('alice', 'wonderland'), /^\+OK/);
      await c.cmd('QUIT');
    });
  });
});

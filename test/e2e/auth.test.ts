/**
 * USER/PASS login (RFC 1939 §7) with Exchange's rules: no user enumeration (R-S13), PASS takes
 * the rest of the line (R-S15), delegated mailboxes (R-K3), failures close the session (R-S10).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Pop3Client } from '../helpers/pop3-client.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/test-server.js';

describe('login', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({
      users: {
        alice: { password: 'wonderland', grants: ['shared'] },
        bob: { password: 'pass with  spaces ' },
        chloé: { password: 'pässwörd' },
      },
    });
    await t.store.deliver('shared', Buffer.from('Subject: for the team\r\n\r\nhi\r\n'));
    await t.store.deliver('bob', Buffer.from('Subject: bob only\r\n\r\nhi\r\n'));
  });
  after(() => t.close());

  it('R-S13 USER answers the same +OK for existing and unknown users', async () => {
    const c = await Pop3Client.connect(t.port);
    const known = await c.cmd('USER alice');
    const unknown = await c.cmd('USER nobody-here');
    assert.equal(known, unknown);
    assert.match(known, /^\+OK/);
    c.close();
  });

  it('R-S13 a failed PASS is identical for an unknown user and a wrong password', async () => {
    const c = await Pop3Client.connect(t.port);
    const wrong = await c.login('alice', 'not-it');
    const unknown = await c.login('nobody-here', 'not-it');
    assert.equal(wrong, unknown);
    assert.equal(wrong, '-ERR [AUTH] Authentication failed');
    c.close();
  });

  // R-S13 "as slowly": the work every failure does (a scrypt user's, a locked or {SSHA512} user's,
  // an unknown user's) is counted in src/auth/authenticator.test.ts; the times it takes over
  // sockets are measured by bench/auth-timing.ts, where noise belongs.

  it('R-S15 PASS takes the whole rest of the line, spaces included', async () => {
    const c = await Pop3Client.connect(t.port);
    assert.match(await c.login('bob', 'pass with  spaces '), /^\+OK/);
    await c.cmd('QUIT');
    const d = await Pop3Client.connect(t.port);
    assert.match(await d.login('bob', 'pass with spaces'), /^-ERR \[AUTH\]/);
    d.close();
  });

  it('R-X5 UTF-8 user names and passwords are compared as given', async () => {
    const c = await Pop3Client.connect(t.port);
    assert.match(await c.login('chloé', 'pässwörd'), /^\+OK/);
    await c.cmd('QUIT');
  });

  it('R-K3 USER domain\\name logs in as name', async () => {
    const c = await Pop3Client.connect(t.port);
    assert.match(await c.login('EXAMPLE\\bob', 'pass with  spaces '), /^\+OK bob has 1 message /);
    await c.cmd('QUIT');
  });

  it('R-K3 USER domain\\name/mailbox opens a granted mailbox', async () => {
    const c = await Pop3Client.connect(t.port);
    assert.match(await c.login('EXAMPLE\\alice/shared', 'wonderland'), /^\+OK shared has 1 message /);
    assert.deepEqual((await c.multi('RETR 1')).lines, ['Subject: for the team', '', 'hi']);
    await c.cmd('QUIT');
  });

  it('R-K3 a mailbox that was not granted is refused with a clear -ERR', async () => {
    const c = await Pop3Client.connect(t.port);
    assert.equal(await c.login('EXAMPLE\\alice/bob', 'wonderland'), '-ERR [AUTH] User alice has no access to mailbox bob');
    assert.match(await c.cmd('STAT'), /^-ERR /, 'still not logged in');
    // The password is checked first: a wrong one gives the ordinary failure, revealing nothing.
    assert.equal(await c.login('alice/bob', 'wrong'), '-ERR [AUTH] Authentication failed');
    c.close();
  });

  it('R-S6 a reply naming a very long mailbox is still at most 512 octets', async () => {
    const c = await Pop3Client.connect(t.port);
    await c.cmd(`USER alice/${'m'.repeat(490)}`);
    c.write('PASS wonderland\r\n');
    const reply = await c.line();
    assert.match(reply, /^-ERR \[AUTH\] User alice has no access to mailbox m+$/);
    assert.equal(Buffer.byteLength(reply) + 2, 512);
    c.close();
  });

  it('R-K3 malformed USER forms are refused', async () => {
    const c = await Pop3Client.connect(t.port);
    assert.match(await c.cmd('USER EXAMPLE\\'), /^-ERR /);
    assert.match(await c.cmd('USER alice/'), /^-ERR /);
    assert.match(await c.cmd('USER /shared'), /^-ERR /);
    c.close();
  });

  it('PASS without USER is refused', async () => {
    const c = await Pop3Client.connect(t.port);
    assert.equal(await c.cmd('PASS wonderland'), '-ERR Send USER first');
    c.close();
  });

  it('R-S10 too many failed logins close the connection', async () => {
    const c = await Pop3Client.connect(t.port);
    assert.equal(await c.login('alice', 'x1'), '-ERR [AUTH] Authentication failed');
    assert.equal(await c.login('alice', 'x2'), '-ERR [AUTH] Authentication failed');
    assert.match(await c.login('alice', 'x3'), /^-ERR \[AUTH\] Authentication failed, too many failures/);
    await c.closed();
  });

  it('R-X13 every failed login is logged once with user and IP, never the password', async () => {
    const c = await Pop3Client.connect(t.port);
    await c.login('alice', 'Secret-Guess-42');
    c.close();
    await waitFor(() => t.logs.some((l) => l.event === 'auth_failed' && l.user === 'alice'));
    const line = t.logs.find((l) => l.event === 'auth_failed' && l.user === 'alice')!;
    assert.equal(line.ip, '127.0.0.1');
    assert.ok(!t.logText().includes('Secret-Guess-42'));
    assert.ok(!t.logText().includes('wonderland'));
  });
});

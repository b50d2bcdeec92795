/**
 * The TLS and credential side of the CLI: `poplar cert` (R-X3), a served certificate replaced and
 * picked up by `poplar reload` without dropping a live session (R-X3, R-S20), and `poplar user
 * passwd` writing the credentials the enabled mechanisms need (R-X4, R-K9).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { after, describe, it } from 'node:test';
import { once } from 'node:events';
import { cramCredential, sharedSecret, ntCredential, scramCredential } from '../../src/auth/credentials.js';
import { PasswdFile } from '../../src/auth/passwd-file.js';
import { verifyPassword } from '../../src/auth/password.js';
import { ntHash } from '../../src/auth/schemes.js';
import { TEST_WORKERS } from '../helpers/poplar-process.js';
import { MAIN, poplar } from './run.js';

const root = mkdtempSync(join(tmpdir(), 'poplar-cli-tls-'));
after(() => rmSync(root, { recursive: true, force: true }));

const fresh = (): string => join(mkdtempSync(join(root, 'case-')), 'data');

/** Runs `poplar serve` and collects its JSON log lines. */
function serve(data: string): { child: ChildProcess; logs: Array<Record<string, unknown>>; until(p: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> } {
  const child = spawn(process.execPath, [MAIN, 'serve', '--data', data, '-o', `server.workers=${TEST_WORKERS}`, '-o', 'pop3.listen=127.0.0.1:0', '-o', 'pop3.tls_listen=127.0.0.1:0', '-o', 'server.first_run_user=""'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Array<Record<string, unknown>> = [];
  let rest = '';
  const waiters: Array<() => void> = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    rest += d;
    const lines = rest.split('\n');
    rest = lines.pop()!;
    for (const l of lines) if (l.startsWith('{')) logs.push(JSON.parse(l) as Record<string, unknown>);
    for (const w of waiters.splice(0)) w();
  });
  const until = async (p: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const hit = logs.find(p);
      if (hit) return hit;
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no such log line; have ${JSON.stringify(logs)}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
  };
  return { child, logs, until };
}

async function peerFingerprint(port: number): Promise<{ socket: TLSSocket; fingerprint: string }> {
  const socket = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false });
  await once(socket, 'secureConnect');
  return { socket, fingerprint: socket.getPeerCertificate().fingerprint256 };
}

describe('poplar cert and reload', () => {
  it('R-X3 poplar cert makes a self-signed pair in data_dir/tls (key 0600) and refuses to overwrite without --force', async () => {
    const data = fresh();
    const r = await poplar(['cert', '--data', data, '--name', 'mail.example.org', '--name', '127.0.0.1']);
    assert.equal(r.code, 0, r.stderr);
    const cert = new X509Certificate(readFileSync(join(data, 'tls', 'cert.pem')));
    assert.equal(cert.subjectAltName?.split(', ').slice(0, 2).join(', '), 'DNS:mail.example.org, IP Address:127.0.0.1');
    assert.ok(cert.checkIssued(cert), 'self-signed');
    assert.equal(statSync(join(data, 'tls', 'key.pem')).mode & 0o777, 0o600);
    const again = await poplar(['cert', '--data', data]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /exists; use --force/);
    assert.equal((await poplar(['cert', '--data', data, '--force'])).code, 0);
  });

  it('R-X3 poplar cert --name adds names to the defaults (localhost, 127.0.0.1, ::1), and --no-default-names leaves them out', async () => {
    // Regression: --name replaced the default names, so a certificate made for mail.example.org
    // no longer matched a client connecting to 127.0.0.1 or localhost.
    const data = fresh();
    const r = await poplar(['cert', '--data', data, '--name', 'mail.example.org', '-o', 'pop3.hostname=pop.example.org']);
    assert.equal(r.code, 0, r.stderr);
    const cert = new X509Certificate(readFileSync(join(data, 'tls', 'cert.pem')));
    assert.equal(cert.subjectAltName, 'DNS:mail.example.org, DNS:pop.example.org, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    assert.match(cert.subject, /CN=mail\.example\.org/, 'the first name given is the subject');
    assert.equal(cert.checkHost('localhost'), 'localhost');
    assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
    const only = await poplar(['cert', '--data', data, '--force', '--name', 'mail.example.org', '--no-default-names']);
    assert.equal(only.code, 0, only.stderr);
    assert.equal(new X509Certificate(readFileSync(join(data, 'tls', 'cert.pem'))).subjectAltName, 'DNS:mail.example.org');
  });

  it('R-X3 R-S20 poplar serve offers POP3S with that certificate; poplar reload swaps it while a session stays up', { timeout: 60_000 }, async () => {
    const data = fresh();
    assert.equal((await poplar(['cert', '--data', data])).code, 0);
    const s = serve(data);
    try {
      const tlsPort = Number((await s.until((l) => l.event === 'listening' && l.tls === true)).port);
      const first = await peerFingerprint(tlsPort);
      const greeting = await once(first.socket, 'data');
      assert.match(String(greeting[0]), /^\+OK/);
      assert.equal(readFileSync(join(data, 'poplar.pid'), 'utf8').trim(), String(s.child.pid));

      assert.equal((await poplar(['cert', '--data', data, '--force', '--name', 'renewed.example'])).code, 0);
      const r = await poplar(['reload', '--data', data]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /configuration reloaded/);
      await s.until((l) => l.event === 'config_reloaded');
      const second = await peerFingerprint(tlsPort);
      assert.notEqual(second.fingerprint, first.fingerprint);
      assert.equal(second.socket.getPeerCertificate().subject.CN, 'renewed.example');
      first.socket.write('CAPA\r\n');
      assert.match(String((await once(first.socket, 'data'))[0]), /^\+OK Capability list follows/, 'the old session goes on');
      first.socket.destroy();
      second.socket.destroy();
    } finally {
      s.child.kill('SIGTERM');
      await once(s.child, 'exit');
    }
    assert.ok(!existsSync(join(data, 'poplar.pid')), 'pid file removed at shutdown');
    const stale = await poplar(['reload', '--data', data]);
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /no pid file/);
  });
});

describe('poplar user passwd and credentials', () => {
  it('R-X4 R-K9 user add/passwd store what the enabled mechanisms need, and drop what they no longer need', async () => {
    const data = fresh();
    const all = ['-o', 'auth.scrypt_cost=14', '-o', 'auth.mechanisms=["PLAIN","SCRAM-SHA-256","NTLM","CRAM-MD5"]'];
    assert.equal((await poplar(['user', 'add', 'alice', '--password-stdin', '--data', data, ...all], { input: 'wonderland\n' })).code, 0);
    let rec = (await new PasswdFile(join(data, 'users')).list())[0]!;
    assert.ok(scramCredential(rec), 'SCRAM keys');
    assert.deepEqual(ntCredential(rec), await ntHash('wonderland'));
    assert.ok(await verifyPassword(`{SCRAM-SHA-256}${rec.credentials!['poplar_scram']!}`, 'wonderland'), 'SCRAM keys of this password');
    assert.equal(sharedSecret(rec), undefined, 'no reversible secret unless APOP is on');
    assert.ok(cramCredential(rec), 'CRAM-MD5 contexts');
    const plainOnly = ['-o', 'auth.scrypt_cost=14', '-o', 'auth.mechanisms=["PLAIN"]'];
    assert.equal((await poplar(['user', 'passwd', 'alice', '--password-stdin', '--data', data, ...plainOnly], { input: 'new-secret\n' })).code, 0);
    rec = (await new PasswdFile(join(data, 'users')).list())[0]!;
    assert.equal(rec.credentials, undefined, 'no stale SCRAM keys, NT hash or secret left behind');
    assert.match(rec.password, /^\{SCRYPT\}/);
  });
});

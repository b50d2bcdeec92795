/**
 * R-X20 SASL GSSAPI (RFC 4752) against a real MIT KDC (test/helpers/kdc.ts) and a real
 * `poplar serve` (KRB5_CONFIG in its environment), with real tickets from `kinit`: curl logs in
 * and RETRs byte-exact; principals without a user, of another realm, with an instance, an expired
 * ticket and a keytab without the service key are refused; a master user's authorization
 * identity; failures counted toward pop3.max_auth_failures and throttled. The expired-ticket,
 * keytab and failure-count cases drive the exchange with the `kerberos` package's client over
 * Pop3Client, so the exact reply is seen.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { needProgram } from '../helpers/external.js';
import { OTHER_REALM, REALM, startKdc, type Kdc } from '../helpers/kdc.js';
import { startPoplar, TEST_WORKERS, type PoplarProcess } from '../helpers/poplar-process.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { waitFor } from '../helpers/wait.js';
import { runProcess, type Run } from '../cli/run.js';

interface KerberosClient {
  step(challenge: string): Promise<string>;
  unwrap(challenge: string): Promise<string>;
  wrap(challenge: string, options?: { user?: string }): Promise<string>;
}
const kerberos = createRequire(import.meta.url)('kerberos') as {
  initializeClient(service: string, options?: { mechOID?: number }): Promise<KerberosClient>;
  GSS_MECH_OID_KRB5: number;
};

const skip = needProgram('krb5-config', 'libkrb5-dev') || needProgram(['krb5kdc', 'kdb5_util'], 'krb5-kdc') || needProgram('kadmin.local', 'krb5-admin-server') ||
  needProgram('kinit', 'krb5-user') || needProgram('curl', 'curl');

const MESSAGE = 'From: bob@example.org\r\nTo: carol@example.org\r\nSubject: kerberos\r\n\r\n.a leading dot\r\nbinary-ish \u00e9\r\n';

describe('R-X20 SASL GSSAPI with a real MIT KDC', { skip }, () => {
  let kdc: Kdc;
  let server: PoplarProcess;
  const servers: PoplarProcess[] = [];

  const start = async (keytab: string, extra: readonly string[] = []): Promise<PoplarProcess> => {
    const p = await startPoplar({
      users: { carol: 'carol-pw', dave: 'dave-pw' },
      env: kdc.env(),
      overrides: [
        'pop3.hostname=localhost',
        'auth.mechanisms=["GSSAPI", "PLAIN"]',
        `auth.gssapi_keytab=${keytab}`,
        `auth.gssapi_realms=["${REALM}"]`,
        'auth.master_users=["dave"]',
        'auth.failure_delay=50',
        ...extra,
      ],
    });
    servers.push(p);
    return p;
  };

  /** curl with the credential cache `cache`: `AUTH GSSAPI`, the user name empty (the ticket says who). */
  const curl = (cache: string, path: string, args: readonly string[] = [], port = server.pop3Port): Promise<Run> =>
    runProcess('curl', ['-sS', '--max-time', '20', '--login-options', 'AUTH=GSSAPI', '-u', ':', ...args, `pop3://localhost:${port}/${path}`], { env: kdc.env(cache) });

  const failures = (p: PoplarProcess): Array<Record<string, unknown>> => p.events('auth_failed');

  before(async () => {
    kdc = await startKdc();
    for (const name of ['carol', 'dave', 'mallory', 'carol/admin', 'brief']) await kdc.admin(`addprinc -pw ${name}-krb ${name}`);
    await kdc.admin(`addprinc -pw erin-krb erin@${OTHER_REALM}`, OTHER_REALM);
    await kdc.admin('modprinc -maxlife "3 seconds" brief');
    for (const name of ['carol', 'dave', 'mallory', 'carol/admin']) {
      const r = await kdc.kinit(name, `${name}-krb`, `cc-${name.replace('/', '-')}`);
      assert.equal(r.code, 0, r.stderr);
    }
    const erin = await kdc.kinit(`erin@${OTHER_REALM}`, 'erin-krb', 'cc-erin');
    assert.equal(erin.code, 0, erin.stderr);
    server = await start(kdc.keytab);
    const d = await server.cli(['deliver', '--user', 'carol'], MESSAGE);
    assert.equal(d.code, 0, d.stderr);
    // The `kerberos` client in this process finds the realm through the same krb5.conf.
    process.env['KRB5_CONFIG'] = kdc.krb5Conf;
  });

  after(async () => {
    for (const p of servers) await p.cleanup();
    await kdc?.stop();
  });

  it('R-X20 CAPA offers GSSAPI, and curl logs in with a Kerberos ticket and RETRs the message byte-exact', async () => {
    const c = await Pop3Client.connect(server.pop3Port);
    const capa = await c.multi('CAPA');
    assert.ok(capa.lines.includes('SASL GSSAPI PLAIN'), capa.lines.join('|'));
    c.close();
    const r = await curl('cc-carol', '1');
    assert.equal(r.code, 0, r.stderr);
    // Byte-exact: what was delivered (after poplar's trace headers), and the same octets a password login gets.
    assert.ok(r.stdout.startsWith('Return-Path: <>\r\n') && r.stdout.endsWith(MESSAGE), r.stdout);
    const byPassword = await runProcess('curl', ['-sS', '--max-time', '20', `pop3://carol:carol-pw@127.0.0.1:${server.pop3Port}/1`]);
    assert.equal(r.stdout, byPassword.stdout);
    const [login] = await server.logged('login', (e) => e['mechanism'] === 'GSSAPI');
    assert.equal(login?.['user'], 'carol');
  });

  it('R-X20 a ticket of a principal with no user in the directory is refused, and logged with the reason', async () => {
    const r = await curl('cc-mallory', '');
    assert.notEqual(r.code, 0);
    const [f] = await server.logged('auth_failed', (e) => e['user'] === 'mallory');
    assert.equal(f?.['mechanism'], 'GSSAPI');
    assert.match(String(f?.['reason']), /mallory@POPLAR\.TEST has no user/);
  });

  it('R-X20 a principal of a realm not in auth.gssapi_realms (a real cross-realm ticket) is refused', async () => {
    const r = await curl('cc-erin', '');
    assert.notEqual(r.code, 0);
    const [f] = await server.logged('auth_failed', (e) => e['user'] === `erin@${OTHER_REALM}`);
    assert.equal(f?.['reason'], `realm ${OTHER_REALM} not accepted`);
  });

  it('R-X20 a principal with an instance (carol/admin) is refused, not taken for carol', async () => {
    const r = await curl('cc-carol-admin', '');
    assert.notEqual(r.code, 0);
    const [f] = await server.logged('auth_failed', (e) => e['user'] === `carol/admin@${REALM}`);
    assert.equal(f?.['reason'], 'principal with an instance');
  });

  it('R-X14 R-X20 a master user\'s authorization identity opens the other maildrop; a non-master\'s is refused', async () => {
    const master = await curl('cc-dave', '1', ['--sasl-authzid', 'carol']);
    assert.equal(master.code, 0, master.stderr);
    assert.ok(master.stdout.endsWith(MESSAGE), master.stdout);
    assert.ok((await server.logged('master_login')).some((e) => e['master'] === 'dave' && e['user'] === 'carol' && e['mechanism'] === 'GSSAPI'));
    const plainUser = await curl('cc-carol', '', ['--sasl-authzid', 'dave']);
    assert.notEqual(plainUser.code, 0);
    assert.ok((await server.logged('auth_failed', (e) => e['user'] === 'carol')).some((e) => e['user'] === 'carol' && e['reason'] === 'not a master user'));
  });

  it('R-X20 fetchmail `auth gssapi` (mutual authentication, authzid = its user name) logs in and fetches', { skip: needProgram('fetchmail', 'fetchmail') }, async () => {
    const rc = join(kdc.dir, 'fetchmailrc');
    const out = join(kdc.dir, 'fetched');
    await writeFile(rc, `poll localhost protocol pop3 port ${server.pop3Port} auth gssapi user carol is root sslproto '' keep mda "cat > ${out}"\n`);
    await chmod(rc, 0o600);
    const r = await runProcess('fetchmail', ['-f', rc, '--nosyslog', '-N', '--pidfile', join(kdc.dir, 'fetchmail.pid')], {
      env: { ...kdc.env('cc-carol'), HOME: kdc.dir, FETCHMAILHOME: kdc.dir },
    });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.ok((await readFile(out, 'utf8')).endsWith(MESSAGE.replaceAll('\r\n', '\n')));
  });

  /** AUTH GSSAPI without an initial response (a Kerberos token is longer than a command line), then `token`. */
  const auth = async (c: Pop3Client, token: string): Promise<string> => {
    assert.equal(await c.cmd('AUTH GSSAPI'), '+ ');
    return c.cmd(token);
  };

  /** A real client token for pop@localhost from the credential cache `cache`, made now. */
  const clientToken = async (cache: string): Promise<{ client: KerberosClient; token: string }> => {
    process.env['KRB5CCNAME'] = `FILE:${join(kdc.dir, cache)}`;
    const client = await kerberos.initializeClient('pop@localhost', { mechOID: kerberos.GSS_MECH_OID_KRB5 });
    return { client, token: await client.step('') };
  };

  it('R-X20 a ticket that has expired (3 s lifetime, 1 s clock skew) is refused by the acceptor', async () => {
    const k = await kdc.kinit('brief', 'brief-krb', 'cc-brief');
    assert.equal(k.code, 0, k.stderr);
    const { token } = await clientToken('cc-brief');
    await sleep(5500);
    const before = failures(server).length;
    const c = await Pop3Client.connect(server.pop3Port);
    assert.match(await auth(c, token), /^-ERR \[AUTH\] Authentication failed/);
    c.close();
    await server.logged('auth_failed', before + 1);
    const f = failures(server).find((e) => /expired/i.test(String(e['reason'])));
    assert.ok(f, JSON.stringify(failures(server)));
  });

  it('R-X20 the full RFC 4752 exchange: AP-REP, the offer of no security layer with max size 0, the client\'s choice', async () => {
    const { client, token } = await clientToken('cc-carol');
    const c = await Pop3Client.connect(server.pop3Port);
    let reply = await auth(c, token);
    // The kerberos client asks for mutual authentication: the AP-REP comes first.
    assert.match(reply, /^\+ \S+$/);
    await client.step(reply.slice(2));
    reply = await c.cmd('');
    const offer = Buffer.from(await client.unwrap(reply.slice(2)), 'base64');
    assert.deepEqual([...offer], [0x01, 0, 0, 0]);
    assert.match(await c.cmd(await client.wrap(offer.toString('base64'))), /^\+OK carol has 1 message/);
    c.close();
  });

  it('R-S10 R-X9 R-X20 failed GSSAPI logins count toward pop3.max_auth_failures and are throttled', async () => {
    const p = await start(kdc.keytab, ['pop3.max_auth_failures=2']);
    const c = await Pop3Client.connect(p.pop3Port);
    const bogus = Buffer.from('not a kerberos token').toString('base64');
    assert.match(await auth(c, bogus), /^-ERR \[AUTH\] Authentication failed$/);
    assert.match(await auth(c, bogus), /^-ERR \[AUTH\] Authentication failed, too many failures, closing connection$/);
    await c.closed();
    const lines = (await p.logged('auth_failed', 2)).filter((e) => e['mechanism'] === 'GSSAPI');
    assert.equal(lines.length, 2);
    assert.ok(Number(lines[0]!['delayMs']) > 0, 'the failure is delayed');
    assert.ok(Number(lines[1]!['penaltyMs']) > 0, 'the second attempt served the penalty before its token was checked');
  });

  it('R-X20 a keytab without the service key: the server logs the acceptor error, the client gets -ERR', async () => {
    const other = join(kdc.dir, 'imap-only.keytab');
    await kdc.admin('addprinc -randkey imap/localhost');
    await kdc.admin(`ktadd -k ${other} imap/localhost`);
    const p = await start(other);
    const { token } = await clientToken('cc-carol');
    const c = await Pop3Client.connect(p.pop3Port);
    assert.match(await auth(c, token), /^-ERR \[SYS\/TEMP\]/);
    c.close();
    const r = await curl('cc-carol', '', [], p.pop3Port);
    assert.notEqual(r.code, 0);
    await waitFor(() => /GSSAPI acceptor: gss_acquire_cred \(keytab\)/.test(p.output()), 5000, 'the acceptor error');
    const logged = p.output();
    assert.match(logged, /GSSAPI acceptor: gss_acquire_cred \(keytab\)/);
    assert.equal(p.events('login').length, 0);
  });

  it('R-X20 GSSAPI is not advertised while the keytab cannot be read', async () => {
    const p = await start(join(kdc.dir, 'missing.keytab'));
    // R-X16: each worker process loads the keytab and says so once (a worker's line may still be on its way after workers_ready).
    const warned = await p.logged('gssapi_keytab_unreadable', TEST_WORKERS);
    assert.equal(warned.length, TEST_WORKERS);
    assert.equal(new Set(warned.map((e) => e['worker'])).size, TEST_WORKERS);
    const c = await Pop3Client.connect(p.pop3Port);
    const capa = await c.multi('CAPA');
    assert.ok(capa.lines.includes('SASL PLAIN'), capa.lines.join('|'));
    assert.match(await c.cmd('AUTH GSSAPI'), /^-ERR/);
    c.close();
  });
});

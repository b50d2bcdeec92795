/**
 * R-X19 R-X20 a Kerberos (SASL GSSAPI) login of a user who exists only in the LDAP directory:
 * a private MIT KDC (test/helpers/kdc.ts) issues the tickets, a private OpenLDAP
 * (test/helpers/slapd.ts) holds the users, and a real `poplar serve` with
 * `auth.directory = "ldap"` and an empty users file maps the principal to the directory user.
 * curl with a ticket RETRs the message LMTP delivered by the user's mail attribute into the
 * maildrop its maildrop attribute names; a principal whose user the directory does not have is
 * refused; with the directory stopped a valid ticket gets `-ERR [SYS/TEMP]`, never a login.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runProcess, type Run } from '../cli/run.js';
import { needProgram } from '../helpers/external.js';
import { REALM, startKdc, type Kdc } from '../helpers/kdc.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { startPoplar, type PoplarProcess } from '../helpers/poplar-process.js';
import { lmtpSend } from '../helpers/python-clients.js';
import { PEOPLE, SERVICE_DN, SERVICE_PASSWORD, startSlapd, type Slapd } from '../helpers/slapd.js';

interface KerberosClient {
  step(challenge: string): Promise<string>;
}
const kerberos = createRequire(import.meta.url)('kerberos') as {
  initializeClient(service: string, options?: { mechOID?: number }): Promise<KerberosClient>;
  GSS_MECH_OID_KRB5: number;
};

const skip = needProgram(['slapd', 'slapadd'], 'slapd') || needProgram('krb5-config', 'libkrb5-dev') ||
  needProgram(['krb5kdc', 'kdb5_util'], 'krb5-kdc') || needProgram('kadmin.local', 'krb5-admin-server') ||
  needProgram('kinit', 'krb5-user') || needProgram('curl', 'curl') || needProgram('python3', 'python3');

const MESSAGE = Buffer.from('From: bob@example.org\r\nTo: carol@example.org\r\nSubject: directory and kerberos\r\n\r\n.a leading dot\r\nbody\r\n');

describe('R-X19 R-X20 GSSAPI logins of LDAP directory users', { skip }, () => {
  let kdc: Kdc;
  let slapd: Slapd;
  let server: PoplarProcess;

  /** curl with the credential cache `cache`: `AUTH GSSAPI`, the user name empty (the ticket says who). */
  const curl = (cache: string, path: string): Promise<Run> =>
    runProcess('curl', ['-sS', '--max-time', '20', '--login-options', 'AUTH=GSSAPI', '-u', ':', `pop3://localhost:${server.pop3Port}/${path}`], { env: kdc.env(cache) });

  /** slapd's stats lines of searches with this user's filter. */
  const searches = (uid: string): number => slapd.count(`filter="(&(objectClass=inetOrgPerson)(uid=${uid}))"`);

  before(async () => {
    slapd = await startSlapd([
      // Not the Kerberos password: a GSSAPI login never uses the directory's password.
      { uid: 'carol', password: 'carol-ldap-secret', mail: 'carol@example.org', maildrop: 'carol.box' },
    ]);
    kdc = await startKdc();
    for (const name of ['carol', 'mallory']) {
      await kdc.admin(`addprinc -pw ${name}-krb ${name}`);
      const r = await kdc.kinit(name, `${name}-krb`, `cc-${name}`);
      assert.equal(r.code, 0, r.stderr);
    }
    const passwordFile = join(slapd.dir, 'bind-password');
    await writeFile(passwordFile, `${SERVICE_PASSWORD}\n`, { mode: 0o600 });
    server = await startPoplar({
      users: {}, // the users file stays empty: carol is only in the directory
      env: kdc.env(),
      overrides: [
        'auth.directory="ldap"',
        `ldap.url="${slapd.url}"`,
        `ldap.base_dn="${PEOPLE}"`,
        'ldap.user_filter="(&(objectClass=inetOrgPerson)(uid=%u))"',
        `ldap.bind_dn="${SERVICE_DN}"`,
        `ldap.bind_password_file="${passwordFile}"`,
        'ldap.mail_attribute="mail"',
        'ldap.maildrop_attribute="poplarMaildrop"',
        'ldap.timeout_ms=2000',
        'pop3.hostname=localhost',
        'auth.mechanisms=["GSSAPI", "PLAIN"]',
        `auth.gssapi_keytab=${kdc.keytab}`,
        `auth.gssapi_realms=["${REALM}"]`,
        'auth.failure_delay=40',
      ],
    });
  });

  after(async () => {
    await server?.cleanup();
    await kdc?.stop();
    await slapd?.close();
  });

  it('R-X19 R-X20 curl with a Kerberos ticket logs in a user only the directory has and RETRs the message LMTP delivered by its mail attribute', async () => {
    assert.equal((await readFile(join(server.dataDir, 'users'), 'utf8').catch(() => '')).trim(), '', 'no user in the users file');
    const sent = await lmtpSend(server.lmtpPort, [{ from: 'bob@example.org', to: ['carol@example.org'], message: MESSAGE }]);
    assert.equal(sent.deliveries[0]!.rcpt[0]![0], 250);
    assert.equal(sent.deliveries[0]!.data[0]![0], 250);
    assert.equal((await server.logged('delivered'))[0]!['mailbox'], 'carol.box');

    const before = searches('carol');
    const r = await curl('cc-carol', '1');
    assert.equal(r.code, 0, r.stderr);
    // Byte-exact: what was delivered, after poplar's trace headers.
    assert.ok(r.stdout.startsWith('Return-Path: <bob@example.org>\r\n'), r.stdout);
    assert.ok(r.stdout.endsWith(MESSAGE.toString('latin1')), r.stdout);
    const [login] = await server.logged('login', (e) => e['mechanism'] === 'GSSAPI');
    assert.equal(login?.['user'], 'carol');
    assert.equal(login?.['mailbox'], 'carol.box');
    assert.ok(searches('carol') > before, 'the principal was looked up in the directory');
  });

  it('R-X19 R-X20 a principal whose user is not in the directory is refused, the directory having been asked', async () => {
    const before = searches('mallory');
    const r = await curl('cc-mallory', '');
    assert.notEqual(r.code, 0);
    const [f] = await server.logged('auth_failed', (e) => e['user'] === 'mallory');
    assert.equal(f?.['mechanism'], 'GSSAPI');
    assert.match(String(f?.['reason']), new RegExp(`principal mallory@${REALM.replace('.', '\\.')} has no user`));
    assert.equal(searches('mallory'), before + 1);
    assert.ok(!server.events('login').some((e) => e['user'] === 'mallory'));
  });

  it('R-X19 R-X20 with the directory stopped, a valid ticket gets -ERR [SYS/TEMP], not a login and not a failure', async () => {
    await slapd.stop();
    try {
      process.env['KRB5_CONFIG'] = kdc.krb5Conf;
      process.env['KRB5CCNAME'] = `FILE:${join(kdc.dir, 'cc-carol')}`;
      const client = await kerberos.initializeClient('pop@localhost', { mechOID: kerberos.GSS_MECH_OID_KRB5 });
      const token = await client.step('');
      const logins = server.events('login').length;
      const failed = server.events('auth_failed').length;
      const c = await Pop3Client.connect(server.pop3Port);
      assert.equal(await c.cmd('AUTH GSSAPI'), '+ ');
      assert.match(await c.cmd(token), /^-ERR \[SYS\/TEMP\]/);
      c.close();
      assert.equal(server.events('login').length, logins);
      assert.equal(server.events('auth_failed').length, failed, 'a directory that cannot answer is not a failed login');
    } finally {
      await slapd.start();
    }
    const again = await curl('cc-carol', '');
    assert.equal(again.code, 0, again.stderr);
  });
});

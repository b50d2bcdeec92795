/**
 * R-X19 LdapDirectory against a real OpenLDAP (test/helpers/slapd.ts): the user name is escaped
 * into the filter (RFC 4515), an empty password never binds (an LDAP bind with no password is an
 * unauthenticated bind that succeeds, RFC 4513 §5.1.2), a filter matching two entries is no user,
 * the URLs fail over, a refused service bind is a DirectoryUnavailableError, `{CRYPT}` hashes verify, and the
 * pure helpers (filter escaping, quota sizes, URL checks).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LdapDirectory, ldapFilterValue, parseQuota, type LdapDirectoryOptions } from '../../src/auth/ldap-directory.js';
import { verifyPassword } from '../../src/auth/password.js';
import { shaCrypt } from '../../src/auth/sha-crypt.js';
import { ldapUrlProblem } from '../../src/config/schema-ldap.js';
import { DirectoryUnavailableError } from '../../src/errors.js';
import { needProgram } from '../helpers/external.js';
import { PEOPLE, SERVICE_DN, SERVICE_PASSWORD, startSlapd, userDn, type Slapd } from '../helpers/slapd.js';

describe('LDAP helpers', () => {
  it('R-X19 ldapFilterValue escapes * ( ) \\ and NUL per RFC 4515 and leaves UTF-8 alone', () => {
    assert.equal(ldapFilterValue('a*b(c)d\\e\0f'), 'a\\2ab\\28c\\29d\\5ce\\00f');
    assert.equal(ldapFilterValue('chloé'), 'chloé');
  });

  it('R-X19 parseQuota reads octets and K/M/G sizes; anything else is no quota', () => {
    assert.equal(parseQuota('1024'), 1024);
    assert.equal(parseQuota('10M'), 10 * 1024 * 1024);
    assert.equal(parseQuota('2 g'), 2 * 1024 ** 3);
    assert.equal(parseQuota('lots'), undefined);
    assert.equal(parseQuota(undefined), undefined);
  });

  it('R-X19 ldap.url takes ldap:// and ldaps:// URLs separated by spaces, nothing else', () => {
    assert.equal(ldapUrlProblem('ldap://a.example ldaps://b.example:636'), undefined);
    assert.match(ldapUrlProblem('http://a.example') ?? '', /expected ldap:\/\/ or ldaps:\/\//);
    assert.match(ldapUrlProblem('ldap://a.example/dc=x?uid') ?? '', /only scheme, host and port/);
  });

  it('R-X19 {CRYPT} verifies SHA-512 crypt(3) output as OpenLDAP stores it', async () => {
    const stored = `{CRYPT}${await shaCrypt('sha512', Buffer.from('pw'), 'saltsalt')}`;
    assert.equal(await verifyPassword(stored, 'pw'), true);
    assert.equal(await verifyPassword(stored, 'pW'), false);
    assert.equal(await verifyPassword('{CRYPT}abJnggxhB/yWI', 'pw'), false, 'DES crypt is not verified');
  });
});

describe('LdapDirectory', { skip: needProgram(['slapd', 'slapadd'], 'slapd') }, () => {
  let slapd: Slapd;
  const open: LdapDirectory[] = [];
  const directory = (o: Partial<LdapDirectoryOptions> = {}): LdapDirectory => {
    const d = new LdapDirectory({
      server: { urls: [slapd.url], timeoutMs: 2000, starttls: false },
      baseDn: PEOPLE,
      userFilter: '(&(objectClass=inetOrgPerson)(uid=%u))',
      bindDn: SERVICE_DN,
      bindPassword: SERVICE_PASSWORD,
      passwordMode: 'bind',
      attributes: { user: 'uid', mail: 'mail', maildrop: '', quota: '', master: '', password: 'userPassword' },
      warn: () => undefined,
      ...o,
    });
    open.push(d);
    return d;
  };
  before(async () => {
    slapd = await startSlapd([
      { uid: 'carol', password: 'carol-secret', mail: 'shared@example.org' },
      { uid: 'dave', password: 'dave-secret', mail: 'shared@example.org' },
    ]);
  });
  after(async () => {
    await Promise.all(open.map((d) => d.close()));
    await slapd?.close();
  });

  it('R-X19 a user name with filter syntax finds nobody (escaped, not injected)', async () => {
    const d = directory();
    assert.equal((await d.lookup('carol'))?.name, 'carol');
    for (const name of ['*', 'car*', 'carol)(uid=*', 'x)(|(uid=*']) assert.equal(await d.lookup(name), undefined, name);
  });

  it('R-X19 an empty password is refused without a bind (LDAP would take it as an unauthenticated bind)', async () => {
    const d = directory();
    const record = await d.lookup('carol');
    const before = slapd.binds(userDn('carol'));
    assert.equal(await record!.checkPassword!(''), false);
    assert.equal(slapd.binds(userDn('carol')), before);
    assert.equal(await record!.checkPassword!('carol-secret'), true);
    assert.equal(await record!.checkPassword!('wrong'), false);
  });

  it('R-X19 a mail address two entries carry is nobody\'s', async () => {
    assert.equal(await directory().lookupAddress('shared@example.org'), undefined);
  });

  it('R-X19 the next URL is tried when one cannot be reached', async () => {
    const d = directory({ server: { urls: ['ldap://127.0.0.1:1', slapd.url], timeoutMs: 2000, starttls: false } });
    assert.equal((await d.lookup('dave'))?.name, 'dave');
  });

  it('R-X19 a refused service bind, or a base DN that does not exist, is a DirectoryUnavailableError, never "no such user"', async () => {
    await assert.rejects(directory({ bindPassword: 'wrong' }).lookup('carol'), DirectoryUnavailableError);
    await assert.rejects(directory({ baseDn: 'ou=nowhere,dc=example,dc=org' }).lookup('carol'), DirectoryUnavailableError);
  });

  it('R-X19 R-S9 the record\'s password field in bind mode changes when the entry does (login cache key)', async () => {
    const d = directory();
    const a = await d.lookup('carol');
    const b = await d.lookup('carol');
    assert.equal(a!.password, b!.password);
    assert.match(a!.password, /^\{LDAP-BIND\}uid=carol,ou=people,dc=example,dc=org \d{14}Z/);
  });
});

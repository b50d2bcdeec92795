/**
 * R-X20: how a Kerberos principal becomes a poplar user (auth/sasl/gssapi.ts principalUser).
 * Only `name@REALM` with REALM among `auth.gssapi_realms` maps, to `name`; the end-to-end refusals
 * with real tickets are in test/e2e/gssapi.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { principalUser } from './gssapi.js';
import { keytabPath } from './gssapi-native.js';

const REALMS = ['EXAMPLE.COM', 'CORP.EXAMPLE.COM'];

describe('GSSAPI principal mapping', () => {
  it('R-X20 carol@REALM is the user carol for each accepted realm', () => {
    assert.deepEqual(principalUser('carol@EXAMPLE.COM', REALMS), { user: 'carol' });
    assert.deepEqual(principalUser('carol@CORP.EXAMPLE.COM', REALMS), { user: 'carol' });
  });

  it('R-X20 a principal of any other realm is refused, realms compared exactly (no case folding, no suffix match)', () => {
    for (const p of ['carol@OTHER.TEST', 'carol@example.com', 'carol@SUB.EXAMPLE.COM', 'carol@EXAMPLE.COM.EVIL']) {
      const r = principalUser(p, REALMS);
      assert.ok('reason' in r && r.reason === `realm ${p.slice(p.indexOf('@') + 1)} not accepted`, `${p}: ${JSON.stringify(r)}`);
    }
    assert.ok('reason' in principalUser('carol@EXAMPLE.COM', []), 'no realms configured: nobody');
  });

  it('R-X20 principals with an instance, escapes or no realm are refused', () => {
    assert.deepEqual(principalUser('carol/admin@EXAMPLE.COM', REALMS), { reason: 'principal with an instance' });
    assert.deepEqual(principalUser('pop/mail.example.com@EXAMPLE.COM', REALMS), { reason: 'principal with an instance' });
    assert.deepEqual(principalUser('car\\@ol@EXAMPLE.COM', REALMS), { reason: 'principal with escaped characters' });
    assert.deepEqual(principalUser('carol', REALMS), { reason: 'principal without a realm' });
    assert.deepEqual(principalUser('@EXAMPLE.COM', REALMS), { reason: 'principal without a realm' });
  });

  it('R-X20 the keytab read: auth.gssapi_keytab, else KRB5_KTNAME (FILE: prefix dropped), else /etc/krb5.keytab', () => {
    assert.equal(keytabPath('/etc/poplar/pop.keytab', { KRB5_KTNAME: 'FILE:/x' }), '/etc/poplar/pop.keytab');
    assert.equal(keytabPath('', { KRB5_KTNAME: 'FILE:/srv/pop.keytab' }), '/srv/pop.keytab');
    assert.equal(keytabPath('', {}), '/etc/krb5.keytab');
  });
});

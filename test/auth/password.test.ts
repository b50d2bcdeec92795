import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hashPassword, schemeOf, verifyDummy, verifyPassword } from '../../src/auth/password.js';

const cost = 14;

describe('password hashing', () => {
  it('R-X8 hashes to {SCRYPT} PHC format and verifies the same password', async () => {
    const stored = await hashPassword('correct horse', { cost });
    assert.match(stored, /^\{SCRYPT\}\$scrypt\$ln=14,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    assert.equal(schemeOf(stored), 'SCRYPT');
    assert.equal(await verifyPassword(stored, 'correct horse'), true);
  });

  it('salts every hash', async () => {
    assert.notEqual(await hashPassword('same', { cost }), await hashPassword('same', { cost }));
  });

  it('a wrong password verifies false', async () => {
    const stored = await hashPassword('correct horse', { cost });
    assert.equal(await verifyPassword(stored, 'correct horse '), false);
    assert.equal(await verifyPassword(stored, ''), false);
  });

  it('unknown schemes, missing schemes and malformed hashes verify false', async () => {
    assert.equal(await verifyPassword('{NOSUCHSCHEME}secret', 'secret'), false); // {PLAIN} is a known scheme since issue 3
    assert.equal(await verifyPassword('{__proto__}x', 'x'), false);
    assert.equal(await verifyPassword('secret', 'secret'), false);
    assert.equal(await verifyPassword('', ''), false);
    assert.equal(await verifyPassword('{SCRYPT}$scrypt$ln=14,r=8,p=1$short$x', 'x'), false);
    assert.equal(await verifyPassword('{SCRYPT}$scrypt$ln=40,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'x'), false);
  });

  it('scheme names are case-insensitive, as in Dovecot', async () => {
    const stored = await hashPassword('pw', { cost });
    assert.equal(await verifyPassword(stored.replace('{SCRYPT}', '{scrypt}'), 'pw'), true);
  });

  it('R-X5 UTF-8 passwords are compared as the bytes given, without normalisation', async () => {
    const composed = 'caf\u00e9 \u{1F511}';
    const decomposed = 'cafe\u0301 \u{1F511}';
    const stored = await hashPassword(composed, { cost });
    assert.equal(await verifyPassword(stored, composed), true);
    assert.equal(await verifyPassword(stored, decomposed), false);
  });

  it('refuses costs outside 10–20', async () => {
    await assert.rejects(hashPassword('pw', { cost: 9 }), RangeError);
    await assert.rejects(hashPassword('pw', { cost: 21 }), RangeError);
    await assert.rejects(hashPassword('pw', { cost: 14.5 }), RangeError);
  });

  it('R-S13 verifyDummy always answers false', async () => {
    assert.equal(await verifyDummy('anything', 'scrypt', cost), false);
    assert.equal(await verifyDummy('anything', 'sha512-crypt', cost), false);
  });
});

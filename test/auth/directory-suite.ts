/**
 * What every ManagedDirectory must do, the same way (auth/directory.ts): the passwd-file and
 * PostgreSQL run this suite (directory.test.ts), so `poplar user` and `poplar grant` give the same
 * results, errors and texts on either, and the Authenticator's R-S13 work is the same on either.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Authenticator } from '../../src/auth/authenticator.js';
import { makeCredentials } from '../../src/auth/credentials.js';
import { DirectoryError, type ManagedDirectory } from '../../src/auth/directory.js';
import { verifyDummy, verifyPassword } from '../../src/auth/password.js';

/** Makes an empty directory for one test. */
export type MakeDirectory = () => Promise<ManagedDirectory>;

const rejectsWith = (code: string, message?: string) => (err: unknown) => {
  assert.ok(err instanceof DirectoryError, String(err));
  assert.equal(err.code, code);
  if (message !== undefined) assert.equal(err.message, message);
  return true;
};

const ALL = { scram: true, nt: true, cram: true, secret: true };

export function runDirectorySuite(name: string, make: MakeDirectory, opts: { skip?: string | false } = {}): void {
  describe(`ManagedDirectory: ${name}`, { skip: opts.skip ?? false }, () => {
    it(`R-X17 R-X8 ${name}: users are listed in the order added and looked up with every credential and grant`, async () => {
      const dir = await make();
      const made = await makeCredentials('wonderland', { cost: 10, needs: ALL });
      await dir.add('alice', made.password, made.credentials);
      await dir.add('bob', '{PLAIN}builder');
      await dir.grant('bob', 'shared');
      await dir.grant('bob', 'sales');
      assert.deepEqual(await dir.lookup('alice'), { name: 'alice', password: made.password, grants: [], credentials: made.credentials });
      assert.deepEqual(Object.keys((await dir.lookup('alice'))!.credentials!).sort(), ['poplar_cram', 'poplar_nt', 'poplar_scram', 'poplar_secret']);
      assert.deepEqual(await dir.lookup('bob'), { name: 'bob', password: '{PLAIN}builder', grants: ['shared', 'sales'] });
      assert.equal(await dir.lookup('nobody'), undefined);
      assert.deepEqual((await dir.list()).map((u) => u.name), ['alice', 'bob']);
      await dir.close();
    });

    it(`R-X17 ${name}: setPassword with credentials replaces every stored credential; without, keeps them`, async () => {
      const dir = await make();
      const first = await makeCredentials('one', { cost: 10, needs: ALL });
      await dir.add('carol', first.password, first.credentials);
      await dir.setPassword('carol', '{PLAIN}two');
      assert.deepEqual((await dir.lookup('carol'))?.credentials, first.credentials, 'no credentials given: kept');
      await dir.setPassword('carol', '{PLAIN}three', { poplar_nt: '0123456789abcdef0123456789abcdef' });
      assert.deepEqual(await dir.lookup('carol'), {
        name: 'carol', password: '{PLAIN}three', grants: [], credentials: { poplar_nt: '0123456789abcdef0123456789abcdef' },
      });
      await dir.setPassword('carol', '{PLAIN}four', {});
      assert.deepEqual(await dir.lookup('carol'), { name: 'carol', password: '{PLAIN}four', grants: [] });
      await dir.close();
    });

    it(`R-X17 ${name}: add, passwd, del, grant and revoke refuse with the same codes and texts`, async () => {
      const dir = await make();
      await dir.add('frank', '{PLAIN}pw');
      await assert.rejects(dir.add('frank', '{PLAIN}x'), rejectsWith('EXISTS', 'user "frank" already exists'));
      await assert.rejects(dir.add('a:b', '{PLAIN}x'), rejectsWith('INVALID_NAME'));
      await assert.rejects(dir.setPassword('nobody', '{PLAIN}x'), rejectsWith('NO_SUCH_USER', 'no such user "nobody"'));
      await assert.rejects(dir.remove('nobody'), rejectsWith('NO_SUCH_USER', 'no such user "nobody"'));
      await dir.grant('frank', 'shared');
      await assert.rejects(dir.grant('frank', 'shared'), rejectsWith('ALREADY_GRANTED', 'frank already has access to shared'));
      await assert.rejects(dir.grant('frank', 'frank'), rejectsWith('ALREADY_GRANTED', '"frank" is frank\'s own maildrop'));
      await assert.rejects(dir.grant('nobody', 'shared'), rejectsWith('NO_SUCH_USER', 'no such user "nobody"'));
      await assert.rejects(dir.grant('frank', '../etc'), rejectsWith('INVALID_NAME'));
      await assert.rejects(dir.revoke('frank', 'sales'), rejectsWith('NOT_GRANTED', 'frank has no access to sales'));
      await assert.rejects(dir.revoke('nobody', 'sales'), rejectsWith('NO_SUCH_USER', 'no such user "nobody"'));
      await dir.revoke('frank', 'shared');
      assert.deepEqual((await dir.lookup('frank'))?.grants, []);
      await dir.close();
    });

    it(`R-X17 R-K3 ${name}: removing a user removes their grants; adding them again starts without any`, async () => {
      const dir = await make();
      await dir.add('gina', '{PLAIN}pw');
      await dir.grant('gina', 'shared');
      await dir.remove('gina');
      assert.equal(await dir.lookup('gina'), undefined);
      assert.deepEqual(await dir.list(), []);
      await dir.add('gina', '{PLAIN}pw2');
      assert.deepEqual(await dir.lookup('gina'), { name: 'gina', password: '{PLAIN}pw2', grants: [] });
      await dir.close();
    });

    it(`R-X17 ${name}: two admins adding one user at once: one succeeds, the other gets EXISTS`, async () => {
      const dir = await make();
      const results = await Promise.allSettled([dir.add('hal', '{PLAIN}a'), dir.add('hal', '{PLAIN}b'), dir.add('hal', '{PLAIN}c')]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      for (const r of results) if (r.status === 'rejected') rejectsWith('EXISTS')(r.reason);
      assert.equal((await dir.list()).length, 1);
      await dir.close();
    });

    it(`R-S13 R-X17 ${name}: an unknown user and a wrong password fail alike, with the same dummy work`, async () => {
      const dir = await make();
      const made = await makeCredentials('wonderland', { cost: 10, needs: ALL });
      await dir.add('alice', made.password, made.credentials);
      const calls = { verify: 0, dummy: 0 };
      const auth = new Authenticator(dir, {
        scryptCost: 10,
        verify: (stored, pw) => (calls.verify++, verifyPassword(stored, pw)),
        dummy: (pw, kind, cost) => (calls.dummy++, verifyDummy(pw, kind, cost)),
      });
      assert.equal((await auth.login('alice', 'wonderland'))?.name, 'alice');
      assert.deepEqual(calls, { verify: 1, dummy: 0 });
      assert.equal(await auth.login('alice', 'wrong'), undefined);
      assert.deepEqual(calls, { verify: 2, dummy: 1 }, 'own scrypt check + the SHA-crypt dummy');
      assert.equal(await auth.login('nobody', 'wrong'), undefined);
      assert.deepEqual(calls, { verify: 2, dummy: 3 }, 'both dummies: the same two checks');
      await dir.close();
    });

    it(`R-X17 R-S9 ${name}: the login cache lets a repeated login in, and never a password changed since`, async () => {
      const dir = await make();
      const made = await makeCredentials('old', { cost: 10, needs: ALL });
      await dir.add('ivy', made.password, made.credentials);
      const calls = { verify: 0 };
      const auth = new Authenticator(dir, {
        scryptCost: 10,
        cache: { ttlMs: 3_600_000, maxEntries: 10 },
        verify: (stored, pw) => (calls.verify++, verifyPassword(stored, pw)),
      });
      assert.ok(await auth.login('ivy', 'old'));
      assert.ok(await auth.login('ivy', 'old'));
      assert.equal(calls.verify, 1, 'the second login came from the cache');
      const next = await makeCredentials('new', { cost: 10, needs: ALL });
      await dir.setPassword('ivy', next.password, next.credentials); // another node or `poplar user passwd`
      assert.equal(await auth.login('ivy', 'old'), undefined, 'the old password no longer matches');
      assert.ok(await auth.login('ivy', 'new'));
      await dir.close();
    });
  });
}

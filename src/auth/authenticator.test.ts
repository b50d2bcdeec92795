/**
 * The Authenticator and its verified-login cache (login-cache.ts). The real scheme and dummy
 * checks run, wrapped to count calls, so each test can tell the full path from a cache hit.
 * Pure: an in-memory directory, no socket, no file.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Authenticator } from './authenticator.js';
import type { UserDirectory, UserRecord } from './directory.js';
import { LoginCache } from './login-cache.js';
import { costClassOf, hashPassword, verifyDummy, verifyPassword } from './password.js';

// `doveadm pw -s SHA512-CRYPT -p bench-password`, and the same password with another salt.
const BENCH = '{SHA512-CRYPT}$6$2xHtSu1OvXv5HAn1$r6VHA1kMqlUqOCNOFauxeEeY4OpONe2zst.4/FeZgzbyLXHrBTwTsr0h5MqzQkFI47xlw5xs4OsQqATNqlFAh/';
const BENCH_RESALTED = '{SHA512-CRYPT}$6$saltsalt$XJrFU1SGiJkaylsq6tw2bLWQRAPq7dfpHdONBNivs2.y/WRdl96qHiB5bo39srbP.C4yD4EZq.IUMXmq1/YX00';

class MemoryDirectory implements UserDirectory {
  readonly users = new Map<string, UserRecord>();
  set(name: string, password: string): void {
    this.users.set(name, { name, password, grants: [] });
  }
  async lookup(name: string): Promise<UserRecord | undefined> {
    return this.users.get(name);
  }
}

function setup(cache: { ttlMs: number; maxEntries: number } | undefined, users: Record<string, string> = { alice: BENCH }) {
  const dir = new MemoryDirectory();
  for (const [n, p] of Object.entries(users)) dir.set(n, p);
  const calls = { verify: 0, dummy: 0 };
  let clock = 1_000_000;
  const auth = new Authenticator(dir, {
    scryptCost: 10,
    ...(cache === undefined ? {} : { cache }),
    now: () => clock,
    verify: (stored, pw) => (calls.verify++, verifyPassword(stored, pw)),
    dummy: (pw, kind, cost) => (calls.dummy++, verifyDummy(pw, kind, cost)),
  });
  return { dir, calls, auth, advance: (ms: number) => (clock += ms) };
}

const HOUR = 3_600_000;

/** Dovecot's {SSHA512}: base64 of SHA-512(password + salt) followed by the salt. */
async function sshaOf(pw: string): Promise<string> {
  const { createHash } = await import('node:crypto');
  const salt = Buffer.from('0123456789abcdef');
  return Buffer.concat([createHash('sha512').update(pw).update(salt).digest(), salt]).toString('base64');
}

describe('Authenticator login cache', () => {
  it('R-S9 a repeated password login with the same password is let in from the cache, without the scheme or the dummy', async () => {
    const { auth, calls } = setup({ ttlMs: HOUR, maxEntries: 100 });
    assert.equal((await auth.login('alice', 'bench-password'))?.name, 'alice');
    assert.deepEqual(calls, { verify: 1, dummy: 0 }, 'a success pays for its own scheme only');
    assert.equal((await auth.login('alice', 'bench-password'))?.name, 'alice');
    assert.equal((await auth.login('alice', 'bench-password'))?.name, 'alice');
    assert.deepEqual(calls, { verify: 1, dummy: 0 });
  });

  it('R-S13 a wrong password after a cached success still fails, through the full path, as an unknown user does', async () => {
    const { auth, calls } = setup({ ttlMs: HOUR, maxEntries: 100 });
    assert.ok(await auth.login('alice', 'bench-password'));
    assert.equal(await auth.login('alice', 'bench-passwore'), undefined);
    assert.deepEqual(calls, { verify: 2, dummy: 1 }, 'the wrong password ran the scheme and the scrypt dummy');
    assert.equal(await auth.login('nobody', 'bench-passwore'), undefined);
    assert.deepEqual(calls, { verify: 2, dummy: 3 }, 'the unknown user ran both dummies');
    // A failure is never cached, and does not spoil the remembered success.
    assert.equal(await auth.login('alice', 'bench-passwore'), undefined);
    assert.deepEqual(calls, { verify: 3, dummy: 4 });
    assert.ok(await auth.login('alice', 'bench-password'));
    assert.deepEqual(calls, { verify: 3, dummy: 4 });
  });

  it('R-S9 R-S13 a changed stored hash makes the cached login useless: the old password fails, the new one is checked in full', async () => {
    const { auth, calls, dir } = setup({ ttlMs: HOUR, maxEntries: 100 });
    assert.ok(await auth.login('alice', 'bench-password'));
    // The same password, re-hashed with another salt: verified again, not taken from the cache.
    dir.set('alice', BENCH_RESALTED);
    assert.ok(await auth.login('alice', 'bench-password'));
    assert.deepEqual(calls, { verify: 2, dummy: 0 });
    // A new password: the old one, cached a moment ago, fails ({PLAIN} is a cheap scheme: its
    // failure pays both dummies, its success none).
    dir.set('alice', '{PLAIN}new secret');
    assert.equal(await auth.login('alice', 'bench-password'), undefined);
    assert.ok(await auth.login('alice', 'new secret'));
    assert.deepEqual(calls, { verify: 4, dummy: 2 });
  });

  it('R-S9 an entry expires cache_ttl after the login that verified it; hits do not extend it', async () => {
    const { auth, calls, advance } = setup({ ttlMs: HOUR, maxEntries: 100 });
    assert.ok(await auth.login('alice', 'bench-password'));
    advance(HOUR - 1);
    assert.ok(await auth.login('alice', 'bench-password'));
    assert.equal(calls.verify, 1);
    advance(1);
    assert.ok(await auth.login('alice', 'bench-password'));
    assert.equal(calls.verify, 2, 'expired: checked in full');
    assert.ok(await auth.login('alice', 'bench-password'));
    assert.equal(calls.verify, 2, 'and remembered again');
  });

  it('R-S9 the cache holds at most cache_size users, the least recently used out first', async () => {
    const { auth, calls } = setup({ ttlMs: HOUR, maxEntries: 2 }, { a: '{PLAIN}pa', b: '{PLAIN}pb', c: '{PLAIN}pc' });
    assert.ok(await auth.login('a', 'pa'));
    assert.ok(await auth.login('b', 'pb'));
    assert.ok(await auth.login('a', 'pa')); // a hit: a is now the most recent
    assert.equal(calls.verify, 2);
    assert.ok(await auth.login('c', 'pc')); // b goes
    assert.equal(calls.verify, 3);
    assert.ok(await auth.login('a', 'pa'));
    assert.ok(await auth.login('c', 'pc'));
    assert.equal(calls.verify, 3, 'a and c still cached');
    assert.ok(await auth.login('b', 'pb'));
    assert.equal(calls.verify, 4, 'b was evicted');
  });

  it('R-S9 cache_ttl 0, cache_size 0 or no cache settings: every login is checked in full', async () => {
    for (const cache of [{ ttlMs: 0, maxEntries: 100 }, { ttlMs: HOUR, maxEntries: 0 }, undefined]) {
      const { auth, calls } = setup(cache);
      for (let i = 0; i < 3; i++) assert.ok(await auth.login('alice', 'bench-password'));
      assert.deepEqual(calls, { verify: 3, dummy: 0 }, JSON.stringify(cache));
    }
  });

  it('R-S20 a reload that turns the cache off forgets what it held', async () => {
    const { auth, calls } = setup({ ttlMs: HOUR, maxEntries: 100 });
    assert.ok(await auth.login('alice', 'bench-password'));
    auth.configureCache({ ttlMs: 0, maxEntries: 100 });
    auth.configureCache({ ttlMs: HOUR, maxEntries: 100 });
    assert.ok(await auth.login('alice', 'bench-password'));
    assert.equal(calls.verify, 2);
  });

  it('R-S9 the MAC binds name, stored hash and password: no field can borrow from its neighbour', async () => {
    const cache = new LoginCache({ ttlMs: HOUR, maxEntries: 10 });
    cache.remember('u', 'ab', 'c');
    assert.ok(await cache.matches('u', 'ab', 'c'));
    assert.ok(!(await cache.matches('u', 'a', 'bc')));
    assert.ok(!(await cache.matches('u', 'abc', '')));
    assert.ok(!(await cache.matches('v', 'ab', 'c')));
    assert.equal(cache.size, 1);
  });
});

describe('Authenticator failure work (R-S13)', () => {
  it('R-S13 every failed password login does one scrypt and one SHA512-CRYPT worth of work, whoever failed', async () => {
    const scrypt10 = await hashPassword('right', { cost: 10 });
    const scrypt11 = await hashPassword('right', { cost: 11 });
    const users = { sha: BENCH, scrypt: scrypt10, otherCost: scrypt11, plain: '{PLAIN}right', locked: '!', sha50k: '{SHA512-CRYPT}$6$rounds=50000$s$x' };
    const dir = new MemoryDirectory();
    for (const [n, p] of Object.entries(users)) dir.set(n, p);
    let work: string[] = [];
    const auth = new Authenticator(dir, {
      scryptCost: 10,
      verify: (stored, pw) => (work.push(costClassOf(stored, 10) ?? 'own'), verifyPassword(stored, pw)),
      dummy: (pw, kind, cost) => (work.push(kind), verifyDummy(pw, kind, cost)),
    });
    const expected: Record<string, string[]> = {
      nobody: ['scrypt', 'sha512-crypt'],
      sha: ['sha512-crypt', 'scrypt'],
      scrypt: ['scrypt', 'sha512-crypt'],
      otherCost: ['own', 'scrypt', 'sha512-crypt'],
      plain: ['own', 'scrypt', 'sha512-crypt'],
      locked: ['own', 'scrypt', 'sha512-crypt'],
      sha50k: ['own', 'scrypt', 'sha512-crypt'],
    };
    for (const [name, want] of Object.entries(expected)) {
      work = [];
      assert.equal(await auth.login(name, 'wrong'), undefined, name);
      assert.deepEqual(work, want, name);
      const classes = work.filter((w) => w !== 'own').sort();
      assert.deepEqual(classes, ['scrypt', 'sha512-crypt'], `${name} paid for both classes`);
    }
    work = [];
    assert.ok(await auth.login('scrypt', 'right'));
    assert.deepEqual(work, ['scrypt'], 'a success of a dummy class pays for its own check only');
    work = [];
    assert.ok(await auth.login('otherCost', 'right'));
    assert.deepEqual(work, ['own', 'scrypt', 'sha512-crypt'], 'a costly scheme of neither class is checked beside both dummies');
  });

  it('R-S13 a cheap scheme ({PLAIN}, {SSHA512}…) is checked before any dummy: a success pays for nothing else, a failure for both dummies after it', async () => {
    // Regression: a first login of a {PLAIN} or {SSHA512} user ran a scrypt and a SHA512-CRYPT
    // beside its check, ~120 ms of CPU per user after every start of the server.
    const dir = new MemoryDirectory();
    dir.set('plain', '{PLAIN}right');
    dir.set('ssha', '{SSHA512}' + (await sshaOf('right')));
    let work: string[] = [];
    const auth = new Authenticator(dir, {
      scryptCost: 10,
      verify: (stored, pw) => (work.push('own'), verifyPassword(stored, pw)),
      dummy: (pw, kind, cost) => (work.push(kind), verifyDummy(pw, kind, cost)),
    });
    for (const name of ['plain', 'ssha']) {
      work = [];
      assert.ok(await auth.login(name, 'right'), name);
      assert.deepEqual(work, ['own'], `${name}: a success runs no dummy`);
      work = [];
      assert.equal(await auth.login(name, 'wrong'), undefined, name);
      assert.deepEqual(work, ['own', 'scrypt', 'sha512-crypt'], `${name}: a failure pays both dummies, as an unknown user does`);
    }
  });
});

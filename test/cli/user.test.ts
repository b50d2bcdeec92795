import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { verifyPassword } from '../../src/auth/password.js';
import { poplar } from './run.js';

/** Every test's data lives under one folder, removed when the file's tests end. */
const root = mkdtempSync(join(tmpdir(), 'poplar-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));

function dataDir(): { data: string; args: string[] } {
  const data = join(mkdtempSync(join(root, 'case-')), 'data');
  return { data, args: ['--data', data, '-o', 'auth.scrypt_cost=14'] };
}

const storedFor = (data: string, name: string): string =>
  readFileSync(join(data, 'users'), 'utf8').split('\n').find((l) => l.startsWith(`${name}:`))!.split(':')[1]!;

describe('poplar user', () => {
  it('R-X8 user add --password-stdin stores a scrypt hash the password verifies against', async () => {
    const { data, args } = dataDir();
    const r = await poplar(['user', 'add', 'alice', '--password-stdin', ...args], { input: 'pass word é\nignored\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /user "alice" added/);
    assert.doesNotMatch(r.stdout + r.stderr, /pass word/);
    const stored = storedFor(data, 'alice');
    assert.match(stored, /^\{SCRYPT\}\$scrypt\$ln=14,/);
    assert.equal(await verifyPassword(stored, 'pass word é'), true);
    assert.equal(statSync(join(data, 'users')).mode & 0o777, 0o600);
  });

  it('user add refuses an existing user, an invalid name and an empty password', async () => {
    const { args } = dataDir();
    assert.equal((await poplar(['user', 'add', 'alice', '--password-stdin', ...args], { input: 'pw\n' })).code, 0);
    const again = await poplar(['user', 'add', 'alice', '--password-stdin', ...args], { input: 'pw\n' });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^poplar: user "alice" already exists/);
    const invalid = await poplar(['user', 'add', 'a:b', '--password-stdin', ...args], { input: 'pw\n' });
    assert.equal(invalid.code, 1);
    assert.match(invalid.stderr, /^poplar: invalid user name/);
    const empty = await poplar(['user', 'add', 'bob', '--password-stdin', ...args], { input: '\n' });
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /^poplar: empty password refused/);
  });

  it('without a terminal and without --password-stdin, user add says what to do', async () => {
    const { args } = dataDir();
    const r = await poplar(['user', 'add', 'alice', ...args], { input: 'pw\n' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^poplar: .*--password-stdin/);
  });

  it('user passwd changes the password; unknown users are an error', async () => {
    const { data, args } = dataDir();
    await poplar(['user', 'add', 'alice', '--password-stdin', ...args], { input: 'old\n' });
    const r = await poplar(['user', 'passwd', 'alice', '--password-stdin', ...args], { input: 'new\r\n' });
    assert.equal(r.code, 0, r.stderr);
    const stored = storedFor(data, 'alice');
    assert.equal(await verifyPassword(stored, 'new'), true);
    assert.equal(await verifyPassword(stored, 'old'), false);
    const unknown = await poplar(['user', 'passwd', 'nobody', '--password-stdin', ...args], { input: 'x\n' });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^poplar: no such user "nobody"/);
  });

  it('user list shows names and grants, never hashes; user del removes and keeps the mail', async () => {
    const { data, args } = dataDir();
    await poplar(['user', 'add', 'alice', '--password-stdin', ...args], { input: 'pw\n' });
    await poplar(['user', 'add', 'bob', '--password-stdin', ...args], { input: 'pw\n' });
    assert.equal((await poplar(['grant', 'bob', 'shared', ...args])).code, 0);
    const list = await poplar(['user', 'list', ...args]);
    assert.equal(list.code, 0);
    assert.equal(list.stdout, 'alice\nbob\tgrants=shared\n');
    const del = await poplar(['user', 'del', 'alice', ...args]);
    assert.equal(del.code, 0, del.stderr);
    assert.match(del.stdout, new RegExp(`removed; their mail in ${join(data, 'mail', 'alice')} was not deleted`));
    assert.equal((await poplar(['user', 'list', ...args])).stdout, 'bob\tgrants=shared\n');
    const again = await poplar(['user', 'del', 'alice', ...args]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^poplar: no such user "alice"/);
  });

  it('user list on an empty data directory lists nobody', async () => {
    const { args } = dataDir();
    const r = await poplar(['user', 'list', ...args]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /no users in/);
  });
});

describe('poplar grant', () => {
  it('R-K3 grant and grant --revoke change what a user may open', async () => {
    const { data, args } = dataDir();
    await poplar(['user', 'add', 'alice', '--password-stdin', ...args], { input: 'pw\n' });
    const g = await poplar(['grant', 'alice', 'sales', ...args]);
    assert.equal(g.code, 0, g.stderr);
    assert.match(g.stdout, /alice\/sales/);
    assert.match(readFileSync(join(data, 'users'), 'utf8'), /^alice:[^\n]*poplar_grants=sales$/m);
    const twice = await poplar(['grant', 'alice', 'sales', ...args]);
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /^poplar: alice already has access to sales/);
    const r = await poplar(['grant', '--revoke', 'alice', 'sales', ...args]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(readFileSync(join(data, 'users'), 'utf8'), /poplar_grants/);
    const none = await poplar(['grant', '--revoke', 'alice', 'sales', ...args]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /^poplar: alice has no access to sales/);
    const nobody = await poplar(['grant', 'nobody', 'sales', ...args]);
    assert.equal(nobody.code, 1);
    assert.match(nobody.stderr, /^poplar: no such user "nobody"/);
  });
});

/**
 * One name rule (src/user-name.ts) for the admin CLI, the users file, delivery and the store
 * (R-X8). Regression: `user add` took names the Maildir store refuses (% ? * " < > | and a
 * leading -): such a user got internal errors at login, `poplar deliver` exited 75 (try again)
 * forever and `poplar quota list` crashed for everyone.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { addUsers } from '../helpers/poplar-process.js';
import { poplar } from './run.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'poplar-names-'));
  dirs.push(dir);
  await addUsers(dir, { alice: 'a' });
  return dir;
}

const oneLine = (stderr: string): void => {
  assert.equal(stderr.trimEnd().split('\n').length, 1, stderr);
  assert.doesNotMatch(stderr, /unexpected error|\n\s+at /, stderr);
};

describe('user names', () => {
  it('R-X8 user add refuses each name the store cannot hold, with a one-line error (regression: % ? * " < > | and a leading - were accepted)', async () => {
    const dir = await dataDir();
    const before = await readFile(join(dir, 'users'), 'utf8');
    for (const bad of ['a%b', 'a?b', 'a*b', 'a"b', 'a<b', 'a>b', 'a|b', '-alice', 'a\u202eb']) {
      const r = await poplar(['user', 'add', '--data', dir, '--password-stdin', '--', bad], { input: 'pw\n' });
      assert.notEqual(r.code, 0, bad);
      assert.match(r.stderr, /^poplar: invalid user name /, bad);
      oneLine(r.stderr);
    }
    assert.equal(await readFile(join(dir, 'users'), 'utf8'), before);
    const ok = await poplar(['user', 'add', 'chloé@example.org', '--data', dir, '--password-stdin', '-o', 'auth.scrypt_cost=14'], { input: 'pw\n' });
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('R-X8 grant, quota and retention refuse a bad name with a one-line error', async () => {
    const dir = await dataDir();
    for (const args of [['grant', 'alice', 'a|b'], ['grant', 'a|b', 'alice'], ['quota', 'set', 'a%b', '--bytes', '1K'], ['quota', 'get', 'a%b'], ['retention', 'set', 'a*b', '--retrieved-days', '1'], ['retention', 'get', 'a*b']]) {
      const r = await poplar([...args, '--data', dir]);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, /^poplar: invalid (user|maildrop) name /, args.join(' '));
      oneLine(r.stderr);
    }
  });

  it('R-X8 R-S16 a bad line in the users file is skipped with one warning; quota list works for everyone else (regression: it crashed)', async () => {
    const dir = await dataDir();
    const users = join(dir, 'users');
    await writeFile(users, `${await readFile(users, 'utf8')}bad%name:{PLAIN}x\nbob:{PLAIN}y\n`);
    const r = await poplar(['quota', 'list', '--data', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n').map((l) => l.split('\t')[0]), ['alice', 'bob']);
    assert.match(r.stderr, /^poplar: \S+ line 2: user "bad%name" skipped: name contains "%"/);
    oneLine(r.stderr);
    assert.equal((await poplar(['user', 'list', '--data', dir])).stdout, 'alice\nbob\n');
    // The admin can still remove the line.
    assert.equal((await poplar(['user', 'del', 'bad%name', '--data', dir])).code, 0);
    assert.doesNotMatch(await readFile(users, 'utf8'), /bad%name/);
  });

  it('R-X6 poplar deliver to a name the store cannot hold bounces (67) instead of deferring forever (regression: exit 75 on every retry)', async () => {
    const dir = await dataDir();
    const users = join(dir, 'users');
    await writeFile(users, `${await readFile(users, 'utf8')}a%b:{PLAIN}x\n`);
    const r = await poplar(['deliver', '--user', 'a%b', '--data', dir], { input: 'Subject: x\n\nx\n' });
    assert.equal(r.code, 67, r.stderr);
    assert.match(r.stderr, /^poplar: no such user "a%b"/);
    oneLine(r.stderr);
  });
});

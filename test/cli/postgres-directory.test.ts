/**
 * R-X17: `poplar user`, `grant`, `quota` and `retention` against a configuration with
 * `auth.directory = "postgres"` (a real PostgreSQL): the same commands, the same output and the
 * same errors as with the passwd-file, nothing written to the data directory's users or policy files.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { verifyPassword } from '../../src/auth/password.js';
import { PostgresDirectory } from '../../src/auth/postgres-directory.js';
import { endPools, poolOn } from '../helpers/pg-pool.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { startPoplar } from '../helpers/poplar-process.js';
import { needPostgres, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { poplar } from './run.js';

const root = mkdtempSync(join(tmpdir(), 'poplar-cli-pg-'));

describe('R-X17 poplar user, grant, quota and retention with auth.directory = "postgres"', { skip: needPostgres() }, () => {
  let pg: PostgresServer;
  before(async () => {
    // Its own cluster: the last test kills and restarts it.
    pg = await startPostgres({ own: true });
  });
  after(async () => {
    await endPools();
    await pg?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  /** A data directory and a migrated database (`poplar db migrate`), and the options naming both. */
  async function setup(): Promise<{ data: string; url: string; args: string[] }> {
    const data = join(mkdtempSync(join(root, 'case-')), 'data');
    const url = await pg.createDatabase();
    const args = ['--data', data, '-o', 'auth.scrypt_cost=14', '-o', 'auth.directory=postgres', '-o', `postgres.url=${url}`];
    const m = await poplar(['db', 'migrate', ...args]);
    assert.equal(m.code, 0, m.stderr);
    return { data, url, args };
  }

  it('R-X17 R-X8 user add/passwd/del/list and grant work on the database, with the passwd-file\'s texts', async () => {
    const { data, url, args } = await setup();
    const add = await poplar(['user', 'add', 'alice', '--password-stdin', ...args], { input: 'pass word\n' });
    assert.equal(add.code, 0, add.stderr);
    assert.equal(add.stdout, 'user "alice" added to PostgreSQL\n');
    assert.equal((await poplar(['user', 'add', 'bob', '--password-stdin', ...args], { input: 'pw\n' })).code, 0);
    const dir = new PostgresDirectory(poolOn(url));
    assert.equal(await verifyPassword((await dir.lookup('alice'))!.password, 'pass word'), true);
    assert.ok((await dir.lookup('alice'))!.credentials?.['poplar_scram'], 'the SCRAM keys the default mechanisms need');

    const again = await poplar(['user', 'add', 'alice', '--password-stdin', ...args], { input: 'pw\n' });
    assert.equal(again.code, 1);
    assert.equal(again.stderr, 'poplar: user "alice" already exists (use "poplar user passwd" to change the password)\n');
    const passwd = await poplar(['user', 'passwd', 'alice', '--password-stdin', ...args], { input: 'new\n' });
    assert.equal(passwd.stdout, 'password of "alice" changed\n');
    assert.equal(await verifyPassword((await dir.lookup('alice'))!.password, 'new'), true);
    const unknown = await poplar(['user', 'passwd', 'nobody', '--password-stdin', ...args], { input: 'x\n' });
    assert.equal(unknown.stderr, 'poplar: no such user "nobody" in PostgreSQL\n');

    const grant = await poplar(['grant', 'bob', 'shared', ...args]);
    assert.equal(grant.stdout, '"bob" may now open maildrop "shared" (log in as bob/shared)\n');
    assert.equal((await poplar(['grant', 'bob', 'shared', ...args])).stderr, 'poplar: bob already has access to shared\n');
    assert.equal((await poplar(['grant', 'nobody', 'shared', ...args])).stderr, 'poplar: no such user "nobody"\n');
    assert.equal((await poplar(['user', 'list', ...args])).stdout, 'alice\nbob\tgrants=shared\n');
    assert.equal((await poplar(['grant', '--revoke', 'bob', 'shared', ...args])).stdout, '"bob" may no longer open maildrop "shared"\n');
    assert.equal((await poplar(['grant', '--revoke', 'bob', 'shared', ...args])).stderr, 'poplar: bob has no access to shared\n');

    const del = await poplar(['user', 'del', 'alice', ...args]);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(del.stdout, `user "alice" removed; their mail in ${join(data, 'mail', 'alice')} was not deleted\n`);
    assert.equal((await poplar(['user', 'del', 'alice', ...args])).stderr, 'poplar: no such user "alice"\n');
    assert.equal((await poplar(['user', 'list', ...args])).stdout, 'bob\n');
    assert.equal(existsSync(join(data, 'users')), false, 'no users file written');
  });

  it('R-X17 R-S16 R-S18 R-X10 quota and retention set/get/list keep the overrides in the database', async () => {
    const { data, args } = await setup();
    for (const name of ['alice', 'bob']) await poplar(['user', 'add', name, '--password-stdin', ...args], { input: 'pw\n' });
    const q = (...a: string[]) => poplar(['quota', ...a, ...args, '-o', 'quota.bytes=1000']);
    assert.equal((await q('get', 'alice')).stdout, 'alice\tbytes 0/1000\tmessages 0/unlimited\t0.0%\n');
    const set = await q('set', 'alice', '--bytes', '2K', '--messages', '5', '--download-per-day', '1M');
    assert.equal(set.code, 0, set.stderr);
    assert.equal(set.stdout, 'alice\tbytes 0/2048\tmessages 0/5\t0.0%\tdownload 1048576/day\n');
    assert.deepEqual((await q('list')).stdout.split('\n').filter(Boolean).map((l) => l.split('\t')[1]), ['bytes 0/2048', 'bytes 0/1000']);
    await q('set', 'alice', '--bytes', 'default');
    assert.match((await q('get', 'alice')).stdout, /^alice\tbytes 0\/1000\tmessages 0\/5/);
    assert.equal((await q('set', 'nobody', '--bytes', '1')).stderr, 'poplar: no such user "nobody"\n');

    const r = (...a: string[]) => poplar(['retention', ...a, ...args]);
    const rs = await r('set', 'bob', '--retrieved-days', '7', '--login-delay', '300');
    assert.equal(rs.code, 0, rs.stderr);
    assert.equal(rs.stdout, 'bob\tretrieved 7 days\tunretrieved kept\tCAPA EXPIRE 7\tLOGIN-DELAY 300\n');
    await r('set', 'bob', '--retrieved-days', 'default');
    assert.equal((await r('get', 'bob')).stdout, 'bob\tretrieved kept\tunretrieved kept\tCAPA EXPIRE NEVER\tLOGIN-DELAY 300\n');
    assert.equal(existsSync(join(data, 'user-policy.toml')), false, 'no policy file written');
  });

  it('R-X17 poplar serve refuses a database that is not migrated, in one line; on a migrated one it serves the users and imports of the database', async () => {
    const data = join(mkdtempSync(join(root, 'case-')), 'data');
    const url = await pg.createDatabase();
    const settings = ['-o', 'auth.directory=postgres', '-o', `postgres.url=${url}`];
    const refused = await poplar(['serve', '--data', data, ...settings, '-o', 'pop3.listen=127.0.0.1:0']);
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr, 'poplar: cannot use the database: the database is not migrated: run "poplar db migrate"\n');
    assert.equal((await poplar(['db', 'migrate', '--data', data, ...settings])).code, 0);

    const p = await startPoplar({ dataDir: data, users: {}, overrides: ['auth.directory=postgres', `postgres.url=${url}`, 'auth.scrypt_cost=14'] });
    try {
      assert.equal((await p.cli(['user', 'add', 'dora', '--password-stdin'], 'explorer\n')).code, 0);
      const mbox = join(root, 'in.mbox');
      writeFileSync(mbox, 'From a@example.org Mon Jan  5 10:00:00 2026\nSubject: imported\nX-UIDL: kept-uidl-1\n\nbody\n');
      const imported = await p.cli(['import', '--user', 'dora', mbox]);
      assert.equal(imported.code, 0, imported.stderr);
      assert.match(imported.stdout, /imported 1 message\(s\)/);
      assert.equal((await p.cli(['import', '--user', 'nobody', mbox])).stderr, 'poplar: no such user "nobody"\n');
      const c = await Pop3Client.connect(p.pop3Port);
      assert.match(await c.login('dora', 'explorer'), /^\+OK dora has 1 message/);
      assert.deepEqual((await c.multi('UIDL')).lines, ['1 kept-uidl-1']);
      await c.cmd('QUIT');
    } finally {
      await p.stop();
    }
  });

  it('R-X17 with the database stopped, every command fails with one line, no stack', async () => {
    const { args } = await setup();
    await poplar(['user', 'add', 'alice', '--password-stdin', ...args], { input: 'pw\n' });
    await pg.kill();
    try {
      const runs = await Promise.all([
        poplar(['user', 'list', ...args]),
        poplar(['user', 'add', 'bob', '--password-stdin', ...args], { input: 'pw\n' }),
        poplar(['grant', 'alice', 'shared', ...args]),
        poplar(['quota', 'get', 'alice', ...args]),
        poplar(['retention', 'set', 'alice', '--login-delay', '5', ...args]),
      ]);
      for (const run of runs) {
        assert.equal(run.code, 1, run.stderr);
        assert.match(run.stderr, /^poplar: the (user directory|user policy) \(PostgreSQL\) is unavailable: .+\n$/);
        assert.equal(run.stderr.split('\n').length, 2, run.stderr);
      }
    } finally {
      await pg.start();
    }
  });
});

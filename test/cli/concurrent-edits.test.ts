/**
 * Admin commands run at the same time (R-X8, R-S16, R-S20): every read-modify-write of the users
 * file and of the per-user policy file holds the file's lock (storage/admin-file.ts), so no change
 * is lost, and the rewritten file keeps its owner and mode. Each command is a real `poplar`
 * process, as an admin's shell (or a provisioning script) would run them.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, chown, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LOCK_HOST } from '../../src/storage/file-lock.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { addUsers, startPoplar } from '../helpers/poplar-process.js';
import { poplar } from './run.js';
import { waitFor } from '../helpers/wait.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function dataDir(users: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'poplar-edits-'));
  dirs.push(dir);
  await addUsers(dir, users);
  return dir;
}

const EIGHT = Array.from({ length: 8 }, (_, i) => `user${i + 1}`);

describe('concurrent admin commands', () => {
  it('R-X8 eight parallel `poplar grant` calls are all kept (regression: all printed success, three were kept)', async () => {
    const dir = await dataDir({ alice: 'a' });
    const runs = await Promise.all(EIGHT.map((box) => poplar(['grant', 'alice', box, '--data', dir])));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const list = await poplar(['user', 'list', '--data', dir]);
    assert.deepEqual(list.stdout.trim().split('grants=')[1]!.split(',').sort(), [...EIGHT].sort());
  });

  it('R-X8 parallel `poplar user del` of different users removes every one, and none can log in over POP3 (regression: deleted users came back)', async () => {
    const users = Object.fromEntries(EIGHT.map((u) => [u, `pw-${u}`]));
    const p = await startPoplar({ users: { keep: 'kept', ...users }, overrides: ['auth.failure_delay=0'] });
    try {
      const login = async (user: string, pw: string): Promise<string> => {
        const c = await Pop3Client.connect(p.pop3Port);
        try {
          return await c.login(user, pw);
        } finally {
          c.close();
        }
      };
      for (const u of EIGHT) assert.match(await login(u, `pw-${u}`), /^\+OK/, `${u} before`);
      const runs = await Promise.all(EIGHT.map((u) => p.cli(['user', 'del', u])));
      for (const r of runs) assert.equal(r.code, 0, r.stderr);
      assert.equal((await p.cli(['user', 'list'])).stdout, 'keep\n');
      // The server stats the users file at most once a second (PasswdFile statIntervalMs): wait for it to see the change.
      await waitFor(async () => /^-ERR/.test(await login(EIGHT[0]!, `pw-${EIGHT[0]}`)), 5000, 'the server reading the new users file');
      for (const u of EIGHT) assert.match(await login(u, `pw-${u}`), /^-ERR/, `${u} after user del`);
      assert.match(await login('keep', 'kept'), /^\+OK/);
    } finally {
      await p.cleanup();
    }
  });

  it('R-S16 parallel `poplar quota set` for different users are all kept (regression: values were lost)', async () => {
    const dir = await dataDir(Object.fromEntries(EIGHT.map((u) => [u, 'x'])));
    const runs = await Promise.all(EIGHT.map((u, i) => poplar(['quota', 'set', u, '--bytes', `${i + 1}K`, '--data', dir])));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const text = await readFile(join(dir, 'user-policy.toml'), 'utf8');
    EIGHT.forEach((u, i) => assert.match(text, new RegExp(`\\[${u}\\]\\nquota_bytes = ${(i + 1) * 1024}\\n`), text));
  });

  it('R-X8 `user passwd` and `quota set` run as root keep the files\' owner and mode (regression: a poplar-owned users file became root 0600, every login failed with EACCES)', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root to chown to nobody');
    const dir = await dataDir({ alice: 'a' });
    const users = join(dir, 'users');
    const policy = join(dir, 'user-policy.toml');
    assert.equal((await poplar(['quota', 'set', 'alice', '--messages', '5', '--data', dir])).code, 0);
    for (const f of [users, policy]) {
      await chown(f, 65534, 65534);
      await chmod(f, 0o640);
    }
    const pw = await poplar(['user', 'passwd', 'alice', '--password-stdin', '--data', dir, '-o', 'auth.scrypt_cost=14'], { input: 'new\n' });
    assert.equal(pw.code, 0, pw.stderr);
    const q = await poplar(['quota', 'set', 'alice', '--messages', '6', '--data', dir]);
    assert.equal(q.code, 0, q.stderr);
    for (const f of [users, policy]) {
      const st = await stat(f);
      assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [65534, 65534, 0o640], f);
    }
    assert.match(await readFile(policy, 'utf8'), /quota_messages = 6/);
  });

  it('R-X8 a lock left by a crashed command is broken at once, not waited on', async () => {
    const dir = await dataDir({ alice: 'a' });
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => dead.once('exit', r));
    await writeFile(join(dir, 'users.lock'), `${dead.pid} ${LOCK_HOST} ${Date.now()} deadbeefdeadbeef\n`);
    const r = await poplar(['grant', 'alice', 'shared', '--data', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(await readFile(join(dir, 'users'), 'utf8'), /poplar_grants=shared/);
  });
});

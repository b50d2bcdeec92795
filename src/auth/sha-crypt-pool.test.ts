/**
 * The SHA-crypt worker pool (sha-crypt-pool.ts on workers/pool.ts): the same answers as the
 * in-thread function for random inputs of both algorithms and custom rounds; a worker killed
 * mid-job rejects that job, the others run on its replacement; many concurrent jobs all resolve; a worker that cannot start falls back in-thread;
 * idle workers do not keep the process alive. No socket, no file written.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ShaCryptPool } from './sha-crypt-pool.js';
import { shaCrypt, type ShaCryptAlg } from './sha-crypt.js';

const SALT_CHARS = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const randomSalt = (): string => Array.from({ length: randomInt(0, 21) }, () => SALT_CHARS[randomInt(SALT_CHARS.length)]).join('');

describe('SHA-crypt worker pool', () => {
  it('gives the in-thread result for random passwords, salts, both algorithms and custom rounds', async () => {
    const pool = new ShaCryptPool({ size: 2 });
    await pool.ready();
    const cases = Array.from({ length: 40 }, (_, i) => ({
      alg: (i % 2 === 0 ? 'sha512' : 'sha256') as ShaCryptAlg,
      pw: randomBytes(randomInt(0, 80)),
      salt: randomSalt(),
      rounds: i % 3 === 0 ? undefined : randomInt(900, 3000),
    }));
    const got = await Promise.all(cases.map((c) => pool.run(c.alg, c.pw, c.salt, c.rounds)));
    for (const [i, c] of cases.entries()) assert.equal(got[i], await shaCrypt(c.alg, c.pw, c.salt, c.rounds), `case ${i}`);
    assert.equal(pool.fallback, false);
    assert.equal(pool.threads.length, 2);
    assert.deepEqual(pool.counts, { inWorker: 40, inThread: 0 });
  });

  it('copies only the password bytes: a Buffer that is a view of a larger slab hashes as itself', async () => {
    const pool = new ShaCryptPool({ size: 1 });
    await pool.ready();
    const slab = Buffer.from('xxxxsecretyyyy');
    const view = slab.subarray(4, 10);
    assert.equal(await pool.run('sha512', view, 'salt'), await shaCrypt('sha512', Buffer.from('secret'), 'salt'));
  });

  it('a worker that dies mid-job rejects that job; the job queued behind it and the next run on a new worker', async () => {
    const pool = new ShaCryptPool({ size: 1 });
    await pool.ready();
    const first = pool.threads[0]!;
    // ~1 s of rounds: still running when the worker is killed; the second waits behind it.
    const running = pool.run('sha512', Buffer.from('long'), 'salt', 1_500_000);
    const queued = pool.run('sha256', Buffer.from('queued'), 'salt');
    await new Promise((r) => setTimeout(r, 100));
    await first.terminate();
    await assert.rejects(running, /SHA-crypt worker: /);
    assert.equal(await queued, await shaCrypt('sha256', Buffer.from('queued'), 'salt'));
    const next = await pool.run('sha512', Buffer.from('Hello world!'), 'saltstring');
    assert.equal(next, '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1');
    assert.equal(pool.threads.length, 1);
    assert.notEqual(pool.threads[0], first);
    assert.equal(pool.fallback, false);
  });

  it('many concurrent jobs all resolve, each with its own answer', async () => {
    const pool = new ShaCryptPool({ size: 2 });
    await pool.ready();
    const n = 300;
    const got = await Promise.all(Array.from({ length: n }, (_, i) => pool.run(i % 2 ? 'sha256' : 'sha512', Buffer.from(`pw${i % 5}`), `s${i % 5}`, 1000)));
    const want = await Promise.all(Array.from({ length: 10 }, (_, i) => shaCrypt(i % 2 ? 'sha256' : 'sha512', Buffer.from(`pw${i % 5}`), `s${i % 5}`, 1000)));
    for (let i = 0; i < n; i++) assert.equal(got[i], want[i % 10], `job ${i}`);
    assert.deepEqual(pool.counts, { inWorker: n, inThread: 0 });
  });

  it('where a worker cannot start, jobs run in-thread with the same answers', async () => {
    const pool = new ShaCryptPool({ workerUrl: new URL('./no-such-worker.js', import.meta.url) });
    await pool.ready();
    assert.equal(pool.fallback, true);
    const [a, b] = await Promise.all([
      pool.run('sha512', Buffer.from('Hello world!'), 'saltstring'),
      pool.run('sha256', Buffer.from('Hello world!'), 'saltstring'),
    ]);
    assert.equal(a, '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1');
    assert.equal(b, '$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5');
    assert.equal(pool.fallback, true);
    assert.equal(await pool.run('sha512', Buffer.from(''), '', undefined), await shaCrypt('sha512', Buffer.from(''), ''));
  });

  it('warm() starts every worker before any job, and a dead worker is replaced at once', async () => {
    const pool = new ShaCryptPool({ size: 2 });
    pool.warm();
    assert.equal(pool.threads.length, 2);
    await pool.ready(); // loaded workers: a death is a crash, not "cannot start"
    await Promise.all([pool.run('sha256', Buffer.from('a'), 'b'), pool.run('sha256', Buffer.from('c'), 'd')]);
    const [first, second] = pool.threads;
    await first!.terminate();
    await new Promise((r) => setImmediate(r));
    assert.equal(pool.threads.length, 2);
    assert.ok(pool.threads.includes(second!) && !pool.threads.includes(first!));
    assert.equal(await pool.run('sha256', Buffer.from('Hello world!'), 'saltstring'), '$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5');
  });

  it('R-S13 keep 1 (the process pool): one worker warmed; a second starts when two hashes are wanted at once, and stays', async () => {
    const pool = new ShaCryptPool({ size: 2, keep: 1 });
    await pool.ready();
    assert.equal(pool.threads.length, 1);
    // ~0.3 s of rounds each: the second queues behind the first, so the pool starts another thread.
    const jobs = [pool.run('sha512', Buffer.from('one'), 'salt', 400_000), pool.run('sha512', Buffer.from('two'), 'salt', 400_000)];
    await waitForThreads(pool, 2);
    await Promise.all(jobs);
    assert.deepEqual(pool.counts, { inWorker: 2, inThread: 0 });
    assert.equal(await pool.run('sha256', Buffer.from('Hello world!'), 'saltstring'), '$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5');
    assert.equal(pool.threads.length, 2);
  });

  it('R-S13 the process pool starts no thread for scrypt logins; the first failed login, of a known or an unknown user, runs in-thread and starts one', async () => {
    const mod = (name: string): string => JSON.stringify(fileURLToPath(new URL(name, import.meta.url)));
    // A fresh process: the process pool is module state. Each failure runs both dummies (authenticator.ts).
    const script = `const { shaCryptPoolState } = await import(${mod('./sha-crypt-pool.js')});
      const { Authenticator } = await import(${mod('./authenticator.js')});
      const { hashPassword } = await import(${mod('./password.js')});
      const password = await hashPassword('right', { cost: 10 });
      const auth = new Authenticator({ lookup: async (n) => (n === 'alice' ? { name: 'alice', password } : undefined) }, { scryptCost: 10 });
      const states = [shaCryptPoolState()];
      states.push((await auth.login('alice', 'right')) === undefined ? 'refused' : shaCryptPoolState());
      await auth.login(process.argv[1], 'wrong');
      states.push(shaCryptPoolState());
      console.log(JSON.stringify(states));`;
    for (const user of ['alice', 'nobody']) {
      const out = await new Promise<string>((resolve, reject) => {
        execFile(process.execPath, ['--input-type=module', '-e', script, user], { timeout: 20_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
      });
      assert.deepEqual(JSON.parse(out), [
        { threads: 0, inWorker: 0, inThread: 0 },
        { threads: 0, inWorker: 0, inThread: 0 },
        { threads: 1, inWorker: 0, inThread: 1 },
      ], `the failed login of ${user}`);
    }
  });

  it('warmed, idle workers do not keep the process alive', async () => {
    const mod = fileURLToPath(new URL('./sha-crypt-pool.js', import.meta.url));
    const script = `const { shaCryptPooled, warmShaCryptPool } = await import(${JSON.stringify(mod)}); warmShaCryptPool(); ` +
      `console.log(await shaCryptPooled('sha512', Buffer.from('Hello world!'), 'saltstring'));`;
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
    });
    assert.equal(out.trim(), '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1');
  });
});

/** Waits until the pool has `n` threads (started, not necessarily loaded); fails after 10 s. */
async function waitForThreads(pool: ShaCryptPool, n: number): Promise<void> {
  for (const end = Date.now() + 10_000; pool.threads.length < n; ) {
    if (Date.now() > end) assert.fail(`the pool has ${pool.threads.length} threads, expected ${n}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

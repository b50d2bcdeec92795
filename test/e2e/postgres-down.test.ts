/**
 * R-X17: a directory database that is down answers every login with `-ERR [SYS/TEMP]` (never a
 * login without the check, never `-ERR [AUTH]` as if the password were wrong), a RETR under a
 * download cap likewise, and logins work again as soon as the database is back (the pool
 * reconnects by itself). A real PostgreSQL, killed with SIGKILL mid-run, or frozen (SIGSTOP: a
 * database that stops answering) so that only the timeout ends the wait.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { makeCredentials } from '../../src/auth/credentials.js';
import { PostgresDirectory } from '../../src/auth/postgres-directory.js';
import { connectPostgres } from '../../src/storage/postgres/client.js';
import { endPools, migratedDatabase } from '../helpers/pg-pool.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { needPostgres, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { TEST_SCRYPT_COST, withServer } from '../helpers/test-server.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('R-X17 the directory database down', { skip: needPostgres() }, () => {
  let pg: PostgresServer;
  before(async () => {
    // Its own cluster: the tests kill and restart it.
    pg = await startPostgres({ own: true });
  });
  after(async () => {
    await endPools();
    await pg?.stop();
  });

  it('R-X17 R-S13 logins get -ERR [SYS/TEMP] while the database is down, RETR under a cap too; logins work again once it is back', async () => {
    const { sql, url } = await migratedDatabase(pg);
    const dir = new PostgresDirectory(sql);
    const made = await makeCredentials('wonderland', { cost: TEST_SCRYPT_COST, needs: { scram: true, nt: false, cram: true, secret: true } });
    await dir.add('alice', made.password, made.credentials);
    const opts = {
      postgres: { url, poolSize: 4, connectTimeout: 2 },
      policyDefaults: { downloadBytesPerDay: 1_000_000 },
      settings: { mechanisms: ['PLAIN', 'CRAM-MD5'], apop: true },
      operations: { loginCache: { ttlMs: 3_600_000, maxEntries: 100 } },
    };
    await withServer(opts, async (s) => {
      await s.store.deliver('alice', Buffer.from('Subject: hi\r\n\r\nhello\r\n'));
      const early = await Pop3Client.connect(s.port);
      assert.match(await early.login('alice', 'wonderland'), /^\+OK alice has 1 message/); // and now in the login cache
      await pg.kill();

      const replies: string[] = [];
      const user = await Pop3Client.connect(s.port);
      replies.push(await user.login('alice', 'wonderland'));
      replies.push(await user.cmd(`AUTH PLAIN ${b64('\0alice\0wonderland')}`));
      replies.push(await user.login('ghost', 'wonderland'));
      const challenge = Buffer.from((await user.cmd('AUTH CRAM-MD5')).slice(2), 'base64').toString('latin1');
      replies.push(await user.cmd(b64(`alice ${createHmac('md5', 'wonderland').update(challenge).digest('hex')}`)));
      for (const r of replies) assert.match(r, /^-ERR \[SYS\/TEMP\] /);
      assert.match(await user.cmd('USER alice'), /^\+OK/, 'the session goes on');
      user.close();
      assert.equal(await early.cmd('RETR 1'), '-ERR [SYS/TEMP] Internal server error, try again later', 'the cap cannot be checked: refused');
      early.close();

      await pg.start();
      const back = await Pop3Client.connect(s.port);
      assert.match(await back.login('alice', 'wonderland'), /^\+OK alice has 1 message/);
      assert.match((await back.multi('RETR 1')).lines.join('\n'), /hello/);
      await back.cmd('QUIT');
    });
  });

  it('R-X17 a database that stops answering (frozen) fails the login with -ERR [SYS/TEMP] after the timeout, not never', async () => {
    const { url } = await migratedDatabase(pg);
    const sql = connectPostgres({ url, poolSize: 2, connectTimeout: 2, statementTimeout: 1000 });
    try {
      const dir = new PostgresDirectory(sql);
      await dir.add('alice', (await makeCredentials('wonderland', { cost: TEST_SCRYPT_COST, needs: { scram: false, nt: false, cram: false, secret: false } })).password);
      await withServer({ postgres: { url, poolSize: 2, connectTimeout: 2, statementTimeout: 1000 } }, async (s) => {
        const c = await Pop3Client.connect(s.port);
        assert.match(await c.login('alice', 'wonderland'), /^\+OK/);
        await c.cmd('QUIT');
        const postmaster = pg.pid()!;
        const pids = [postmaster, ...execFileSync('pgrep', ['-P', String(postmaster)], { encoding: 'utf8' }).trim().split('\n').map(Number)];
        for (const pid of pids) process.kill(pid, 'SIGSTOP');
        try {
          const d = await Pop3Client.connect(s.port);
          const started = Date.now();
          assert.match(await d.login('alice', 'wonderland'), /^-ERR \[SYS\/TEMP\] /);
          assert.ok(Date.now() - started < 4500, `answered after ${Date.now() - started} ms`);
          d.close();
        } finally {
          for (const pid of pids) process.kill(pid, 'SIGCONT');
        }
        const e = await Pop3Client.connect(s.port);
        assert.match(await e.login('alice', 'wonderland'), /^\+OK/, 'and logins work again once it answers');
        await e.cmd('QUIT');
      });
    } finally {
      await sql.end({ timeout: 1 });
    }
  });
});

/**
 * R-X17 over real POP3 sockets with users, grants, policy and poll state in a real PostgreSQL
 * (test/helpers/postgres.ts): every login method the passwd-file serves (USER/PASS, APOP,
 * CRAM-MD5, SCRAM-SHA-256, PLAIN), a master user (R-X14), a grant (R-K3), LOGIN-DELAY and the
 * daily download cap held by two servers on one database (R-X10), and a quota override (R-S16).
 */
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeCredentials } from '../../src/auth/credentials.js';
import { PostgresDirectory } from '../../src/auth/postgres-directory.js';
import { DeliveryAgent } from '../../src/delivery/agent.js';
import { createLogger } from '../../src/observability/logger.js';
import { PostgresPollState } from '../../src/policy/postgres-poll-state.js';
import { PostgresOverrides } from '../../src/policy/postgres-user-policy.js';
import { UserPolicies, type EffectivePolicy } from '../../src/policy/user-policy.js';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import { endPools, migratedDatabase, poolOn } from '../helpers/pg-pool.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { needPostgres, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { TEST_SCRYPT_COST, withServer, type TestServerOptions } from '../helpers/test-server.js';

const NONE: EffectivePolicy = { quotaBytes: 0, quotaMessages: 0, retrievedDays: 0, unretrievedDays: 0, loginDelay: 0, downloadBytesPerDay: 0 };
const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
const unb64 = (line: string): string => Buffer.from(line.replace(/^\+ ?/, ''), 'base64').toString('latin1');
const hmac = (alg: string, key: Buffer | string, data: string | Buffer): Buffer => createHmac(alg, key).update(data).digest();

/** RFC 5802 client side of SCRAM-SHA-256, over AUTH (RFC 5034). */
async function scramLogin(c: Pop3Client, user: string, password: string): Promise<string> {
  const cnonce = randomBytes(12).toString('base64');
  const first = `n=${user},r=${cnonce}`;
  assert.equal(await c.cmd('AUTH SCRAM-SHA-256'), '+ ');
  const serverFirst = unb64(await c.cmd(b64(`n,,${first}`)));
  const attrs = Object.fromEntries(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)]));
  const salted = pbkdf2Sync(password, Buffer.from(attrs['s']!, 'base64'), Number(attrs['i']), 32, 'sha256');
  const clientKey = hmac('sha256', salted, 'Client Key');
  const withoutProof = `c=biws,r=${attrs['r']}`;
  const auth = `${first},${serverFirst},${withoutProof}`;
  const signature = hmac('sha256', createHash('sha256').update(clientKey).digest(), auth);
  const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]!));
  const reply = await c.cmd(b64(`${withoutProof},p=${proof.toString('base64')}`));
  return reply.startsWith('+ ') ? c.cmd('') : reply;
}

async function cramLogin(c: Pop3Client, user: string, password: string): Promise<string> {
  const challenge = unb64(await c.cmd('AUTH CRAM-MD5'));
  return c.cmd(b64(`${user} ${hmac('md5', password, challenge).toString('hex')}`));
}

async function apopLogin(c: Pop3Client, user: string, secret: string): Promise<string> {
  const banner = /<[^>]+>/.exec(await c.greeting)![0];
  return c.cmd(`APOP ${user} ${createHash('md5').update(banner + secret).digest('hex')}`);
}

describe('R-X17 POP3 logins and policy with the directory in PostgreSQL', { skip: needPostgres() }, () => {
  let pg: PostgresServer;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await endPools();
    await pg?.stop();
  });

  /** A migrated database with alice, bob (granted "shared") and admin, every credential stored. */
  async function database(): Promise<string> {
    const { sql, url } = await migratedDatabase(pg);
    const dir = new PostgresDirectory(sql);
    for (const [name, pw] of [['alice', 'wonderland'], ['bob', 'builder'], ['admin', 'master-key'], ['shared', 'unused']] as const) {
      const made = await makeCredentials(pw, { cost: TEST_SCRYPT_COST, needs: { scram: true, nt: true, cram: true, secret: true } });
      await dir.add(name, made.password, made.credentials);
    }
    await dir.grant('bob', 'shared');
    return url;
  }

  /** One node: its own pool, directory, policies and poll state on the database `url`. */
  function node(url: string, extra: Partial<TestServerOptions> = {}): TestServerOptions {
    return {
      postgres: url,
      settings: { apop: true, mechanisms: ['PLAIN', 'CRAM-MD5', 'SCRAM-SHA-256'], masterUsers: ['admin'] },
      ...extra,
    };
  }

  it('R-X17 R-S9 R-X4 R-K9 USER/PASS, PLAIN, APOP, CRAM-MD5 and SCRAM-SHA-256 log in; wrong and unknown fail alike', async () => {
    const url = await database();
    await withServer(node(url), async (s) => {
      await s.store.deliver('alice', Buffer.from('Subject: hi\r\n\r\nhello\r\n'));
      const logins: Array<(c: Pop3Client) => Promise<string>> = [
        (c) => c.login('alice', 'wonderland'),
        (c) => c.cmd(`AUTH PLAIN ${b64('\0alice\0wonderland')}`),
        (c) => apopLogin(c, 'alice', 'wonderland'),
        (c) => cramLogin(c, 'alice', 'wonderland'),
        (c) => scramLogin(c, 'alice', 'wonderland'),
      ];
      for (const login of logins) {
        const c = await Pop3Client.connect(s.port);
        assert.match(await login(c), /^\+OK alice has 1 message/);
        await c.cmd('QUIT');
      }
      const failures: string[] = [];
      for (const [user, pw] of [['alice', 'wrong'], ['ghost', 'wonderland']] as const) {
        for (const login of [(c: Pop3Client) => c.login(user, pw), (c: Pop3Client) => cramLogin(c, user, pw), (c: Pop3Client) => apopLogin(c, user, pw)]) {
          const c = await Pop3Client.connect(s.port);
          failures.push(await login(c));
          c.close();
        }
      }
      assert.deepEqual(failures, Array(6).fill('-ERR [AUTH] Authentication failed'));
    });
  });

  it('R-X17 R-X14 R-K3 a master user opens any maildrop; a grant opens another maildrop, and revoking it closes it', async () => {
    const url = await database();
    const admin = new PostgresDirectory(poolOn(url));
    await withServer(node(url), async (s) => {
      const m = await Pop3Client.connect(s.port);
      assert.match(await m.login('alice*admin', 'master-key'), /^\+OK alice has 0 messages/);
      await m.cmd('QUIT');
      const p = await Pop3Client.connect(s.port);
      assert.match(await p.cmd(`AUTH PLAIN ${b64('alice\0admin\0master-key')}`), /^\+OK alice has/);
      await p.cmd('QUIT');
      const notMaster = await Pop3Client.connect(s.port);
      assert.equal(await notMaster.login('alice*bob', 'builder'), '-ERR [AUTH] Authentication failed');
      notMaster.close();
      const g = await Pop3Client.connect(s.port);
      assert.match(await g.login('bob/shared', 'builder'), /^\+OK shared has 0 messages/);
      await g.cmd('QUIT');
      const denied = await Pop3Client.connect(s.port);
      assert.equal(await denied.login('alice/shared', 'wonderland'), '-ERR [AUTH] User alice has no access to mailbox shared');
      denied.close();
      await admin.revoke('bob', 'shared');
      const revoked = await Pop3Client.connect(s.port);
      assert.equal(await revoked.login('bob/shared', 'builder'), '-ERR [AUTH] User bob has no access to mailbox shared', 'seen at the next login');
      revoked.close();
    });
  });

  it('R-X17 R-X10 LOGIN-DELAY and the daily download cap hold across two servers on one database', async () => {
    const url = await database();
    const overrides = new UserPolicies(new PostgresOverrides(poolOn(url)), NONE);
    await overrides.update('alice', { login_delay: 600 });
    await overrides.update('bob', { download_bytes_per_day: 100 });
    const message = Buffer.from(`Subject: big\r\n\r\n${'x'.repeat(150)}\r\n`);
    await withServer(node(url), async (a) => {
      await withServer(node(url), async (b) => {
        for (const s of [a, b]) await s.store.deliver('bob', message);
        const first = await Pop3Client.connect(a.port);
        assert.match(await first.login('alice', 'wonderland'), /^\+OK/);
        assert.ok((await first.multi('CAPA')).lines.includes('LOGIN-DELAY 600'));
        await first.cmd('QUIT');
        const second = await Pop3Client.connect(b.port);
        assert.match(await second.login('alice', 'wonderland'), /^-ERR \[LOGIN-DELAY\] Minimum time between logins is 600 seconds/);
        second.close();

        const onA = await Pop3Client.connect(a.port);
        assert.match(await onA.login('bob', 'builder'), /^\+OK/);
        assert.match((await onA.multi('RETR 1')).lines.join('\n'), /x{150}/);
        await onA.cmd('QUIT');
        const onB = await Pop3Client.connect(b.port);
        assert.match(await onB.login('bob', 'builder'), /^\+OK/);
        assert.equal(await onB.cmd('RETR 1'), '-ERR [SYS/TEMP] Daily download limit reached, try again after 00:00 UTC');
        await onB.cmd('QUIT');
      });
    });
  });

  it('R-X17 R-S16 a quota override in the database refuses a delivery the default would take', async () => {
    const url = await database();
    const policies = new UserPolicies(new PostgresOverrides(poolOn(url)), { ...NONE, quotaMessages: 10 });
    await policies.update('alice', { quota_messages: 1 });
    const maildir = await mkdtemp(join(tmpdir(), 'poplar-pg-quota-'));
    const store = new MaildirStore({ path: (m) => join(maildir, m) });
    const agent = new DeliveryAgent({
      store, directory: new PostgresDirectory(poolOn(url)), policies, logger: createLogger('silent'),
      hostname: 'test.example', overQuota: 'reject', warnPercent: [], recipientDelimiter: '+',
    });
    const envelope = { sender: 'a@example.org', recipient: 'alice@example.org', protocol: 'local' } as const;
    assert.equal(await agent.resolve('alice+x@example.org'), 'alice');
    assert.equal((await agent.deliver('alice', Buffer.from('Subject: 1\r\n\r\none\r\n'), envelope)).ok, true);
    const second = await agent.deliver('alice', Buffer.from('Subject: 2\r\n\r\ntwo\r\n'), envelope);
    assert.deepEqual(second.ok ? undefined : second.refusal.kind, 'over-quota');
    assert.equal((await agent.deliver('bob', Buffer.from('Subject: 3\r\n\r\nthree\r\n'), { ...envelope, recipient: 'bob@example.org' })).ok, true, 'bob has the default');
    try {
      await withServer({ ...node(url), maildir }, async (s) => {
        const c = await Pop3Client.connect(s.port);
        assert.match(await c.login('alice', 'wonderland'), /^\+OK alice has 1 message/);
        await c.cmd('QUIT');
      });
    } finally {
      await store.close();
      await rm(maildir, { recursive: true, force: true });
    }
  });
});

/**
 * R-X19 users from a real OpenLDAP (test/helpers/slapd.ts) through a real `poplar serve` with
 * `auth.directory = "ldap"` (the settings docs/authentication.md shows), over POP3 and LMTP
 * sockets: bind and compare logins, unknown users failing exactly as wrong passwords (R-S13),
 * the directory stopped mid-run (-ERR [SYS/TEMP], 451; logins again after its restart), ldaps://
 * and StartTLS with CA checks, LMTP delivery by the mail attribute into the maildrop attribute's
 * maildrop, the directory's master flag (R-X14) and quota, the login cache, and `poplar user add`
 * refusing.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import { testCerts } from '../helpers/certs.js';
import { needProgram } from '../helpers/external.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { startPoplar, type PoplarProcess } from '../helpers/poplar-process.js';
import { lmtpSend } from '../helpers/python-clients.js';
import { PEOPLE, SERVICE_DN, SERVICE_PASSWORD, startSlapd, userDn, type LdapUser, type Slapd } from '../helpers/slapd.js';

const USERS: LdapUser[] = [
  { uid: 'carol', password: 'carol-secret', mail: 'carol@example.org', maildrop: 'carol.box' },
  { uid: 'dave', password: 'dave-secret', scheme: 'CRYPT', mail: 'dave@example.org' },
  { uid: 'erin', password: 'erin-secret', master: true },
  { uid: 'frank', password: 'frank-secret', mail: 'frank@example.org', quota: '1K' },
  { uid: 'gina', password: 'gina-secret', stored: '{PLAIN}gina-secret' },
];

const skip = needProgram(['slapd', 'slapadd'], 'slapd') || needProgram('python3', 'python3');

/**
 * docs/authentication.md's OpenLDAP example (the toml block after its `ldap-example` marker) as
 * `-o` overrides, with this slapd's URL, the test CA and a password file; then `extra`.
 */
async function ldapOverrides(slapd: Slapd, extra: readonly string[] = []): Promise<string[]> {
  const doc = await readFile(fileURLToPath(new URL('../../../docs/authentication.md', import.meta.url)), 'utf8');
  const block = /<!-- ldap-example[^>]*-->\n```toml\n([\s\S]*?)```/.exec(doc);
  assert.ok(block, 'docs/authentication.md has the OpenLDAP example');
  const example = parseToml(block[1]!) as Record<string, Record<string, unknown>>;
  const passwordFile = join(slapd.dir, 'bind-password');
  await writeFile(passwordFile, `${SERVICE_PASSWORD}\n`, { mode: 0o600 });
  example['ldap'] = { ...example['ldap'], url: slapd.ldapsUrl, ca_file: (await testCerts()).cert, bind_password_file: passwordFile };
  assert.equal(example['ldap']!['base_dn'], PEOPLE);
  assert.equal(example['ldap']!['bind_dn'], SERVICE_DN);
  const overrides = Object.entries(example).flatMap(([section, keys]) =>
    Object.entries(keys).map(([key, value]) => `${section}.${key}=${typeof value === 'string' ? JSON.stringify(value) : String(value)}`));
  return [...overrides, 'ldap.timeout_ms=2000', 'auth.failure_delay=40', ...extra];
}

async function login(port: number, user: string, password: string): Promise<{ reply: string; stat: string }> {
  const c = await Pop3Client.connect(port);
  try {
    const reply = await c.login(user, password);
    const stat = reply.startsWith('+OK') ? await c.cmd('STAT') : '';
    if (reply.startsWith('+OK')) await c.cmd('QUIT');
    return { reply, stat };
  } finally {
    c.close();
  }
}

const message = (subject: string): Buffer =>
  Buffer.from(`From: a@example.net\r\nTo: someone\r\nSubject: ${subject}\r\n\r\nbody of ${subject}\r\n`);

describe('LDAP user directory', { skip }, () => {
  let slapd: Slapd;
  const servers: PoplarProcess[] = [];
  const serve = async (extra: readonly string[] = [], dir = slapd): Promise<PoplarProcess> => {
    const p = await startPoplar({ users: {}, overrides: await ldapOverrides(dir, extra) });
    servers.push(p);
    return p;
  };

  before(async () => {
    slapd = await startSlapd(USERS);
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.cleanup()));
    await slapd?.close();
  });

  it('R-X19 a directory user logs in by bind; LMTP delivers by the mail attribute into the maildrop attribute\'s maildrop; RETR is byte-exact', async () => {
    const p = await serve();
    const msg = message('by mail attribute');
    const sent = await lmtpSend(p.lmtpPort, [{ from: 'a@example.net', to: ['carol@example.org', 'nobody@example.org'], message: msg }]);
    assert.equal(sent.deliveries[0]!.rcpt[0]![0], 250);
    assert.equal(sent.deliveries[0]!.rcpt[1]![0], 550, 'an address the directory does not know is refused for good');
    assert.equal((await p.logged('delivered'))[0]!['mailbox'], 'carol.box');
    const c = await Pop3Client.connect(p.pop3Port);
    assert.match(await c.login('carol', 'carol-secret'), /^\+OK carol\.box has 1 message/);
    const retr = await c.multi('RETR 1');
    const body = retr.raw.subarray(0, retr.raw.length - '.\r\n'.length);
    assert.ok(body.subarray(body.length - msg.length).equals(msg), 'the message as delivered, after the trace headers');
    await c.cmd('QUIT');
    c.close();
    const [ok] = await p.logged('login', (e) => e['user'] === 'carol');
    assert.equal(ok?.['mailbox'], 'carol.box');
    assert.ok(!p.output().includes('carol-secret') && !p.output().includes(SERVICE_PASSWORD), 'no password logged');
  });

  it('R-X19 R-S13 a wrong password and a user not in the directory fail with the same text, log fields and penalty', async () => {
    // Two servers, the two failures in opposite order: each position gets the same delays.
    const runs: Array<Array<Record<string, unknown>>> = [];
    for (const order of [['carol', 'ghost'], ['ghost', 'carol']]) {
      const p = await serve();
      const replies = [];
      for (const user of order) replies.push((await login(p.pop3Port, user, 'not-the-password')).reply);
      assert.deepEqual(replies, ['-ERR [AUTH] Authentication failed', '-ERR [AUTH] Authentication failed']);
      const failed = await p.logged('auth_failed', order.length);
      assert.deepEqual(failed.map((e) => e['user']), order);
      // R-X16: `worker` names the process that served the attempt, whichever the kernel picked.
      runs.push(failed.map(({ time: _t, msg: _m, user: _u, pid: _p, hostname: _h, session: _s, worker: _w, ...rest }) => rest));
    }
    assert.deepEqual(runs[0], runs[1], 'same fields, penaltyMs and delayMs whichever failed first');
    assert.ok(Number(runs[0]![1]!['penaltyMs']) > 0, 'the second attempt served the grown penalty');
    assert.equal(slapd.binds(userDn('ghost')), 0, 'nobody binds for a user the directory does not have');
  });

  it('R-X19 compare mode verifies the stored {SSHA} and {CRYPT}$6$ hashes without binding as the user', async () => {
    const p = await serve(['ldap.password_mode=compare']);
    const before = slapd.binds(userDn('dave'));
    assert.match((await login(p.pop3Port, 'dave', 'dave-secret')).reply, /^\+OK/);
    assert.match((await login(p.pop3Port, 'carol', 'carol-secret')).reply, /^\+OK/);
    assert.equal((await login(p.pop3Port, 'dave', 'carol-secret')).reply, '-ERR [AUTH] Authentication failed');
    assert.equal(slapd.binds(userDn('dave')), before, 'compare mode never binds as the user');
  });

  it('R-X19 R-S9 in compare mode a {PLAIN} userPassword also serves CRAM-MD5; a bind-mode record serves no challenge mechanism', async () => {
    const cram = async (port: number, user: string, secret: string): Promise<string> => {
      const c = await Pop3Client.connect(port);
      try {
        const challenge = Buffer.from((await c.cmd('AUTH CRAM-MD5')).slice(2), 'base64');
        const digest = createHmac('md5', secret).update(challenge).digest('hex');
        return await c.cmd(Buffer.from(`${user} ${digest}`).toString('base64'));
      } finally {
        c.close();
      }
    };
    const compare = await serve(['ldap.password_mode=compare', 'auth.mechanisms=["PLAIN", "CRAM-MD5"]']);
    assert.match(await cram(compare.pop3Port, 'gina', 'gina-secret'), /^\+OK/);
    assert.equal(await cram(compare.pop3Port, 'gina', 'wrong'), '-ERR [AUTH] Authentication failed');
    const bind = await serve(['auth.mechanisms=["PLAIN", "CRAM-MD5"]']);
    assert.equal(await cram(bind.pop3Port, 'gina', 'gina-secret'), '-ERR [AUTH] Authentication failed');
  });

  it('R-X19 R-S9 a second login of a directory user is served by the login cache (one bind); with auth.cache_ttl = 0 each login binds', async () => {
    for (const [ttl, binds] of [[3600, 1], [0, 2]] as const) {
      const p = await serve([`auth.cache_ttl=${ttl}`]);
      const start = slapd.binds(userDn('dave'));
      for (let i = 0; i < 2; i++) assert.match((await login(p.pop3Port, 'dave', 'dave-secret')).reply, /^\+OK/);
      assert.equal(slapd.binds(userDn('dave')) - start, binds, `cache_ttl=${ttl}`);
      await p.stop();
    }
  });

  it('R-X19 R-X14 the master attribute makes a master user; the quota attribute is the maildrop\'s quota', async () => {
    const p = await serve();
    await lmtpSend(p.lmtpPort, [{ from: 'a@example.net', to: ['carol@example.org'], message: message('for the master') }]);
    assert.match((await login(p.pop3Port, 'carol*erin', 'erin-secret')).reply, /^\+OK carol\.box has/);
    assert.equal((await login(p.pop3Port, 'erin*dave', 'dave-secret')).reply, '-ERR [AUTH] Authentication failed', 'dave is no master user');
    const big = Buffer.concat([message('too big'), Buffer.alloc(2048, 'x')]);
    const sent = await lmtpSend(p.lmtpPort, [{ from: 'a@example.net', to: ['frank@example.org'], message: big }]);
    assert.equal(sent.deliveries[0]!.data[0]![0], 552, 'poplarQuota 1K');
  });

  it('R-X19 ldaps:// and StartTLS check the directory\'s certificate against ldap.ca_file; a wrong CA refuses every login', async () => {
    const certs = await testCerts();
    const ldaps = [`ldap.url=${slapd.ldapsUrl}`];
    const cases: Array<[string, readonly string[], RegExp]> = [
      ['ldaps, right CA', [...ldaps, `ldap.ca_file=${certs.cert}`], /^\+OK/],
      ['ldaps, wrong CA', [...ldaps, `ldap.ca_file=${certs.ca}`], /^-ERR \[SYS\/TEMP\] /],
      ['StartTLS, right CA', [`ldap.url=${slapd.url}`, 'ldap.starttls=true', `ldap.ca_file=${certs.cert}`], /^\+OK/],
      ['StartTLS, wrong CA', [`ldap.url=${slapd.url}`, 'ldap.starttls=true', `ldap.ca_file=${certs.ca}`], /^-ERR \[SYS\/TEMP\] /],
    ];
    for (const [name, extra, expected] of cases) {
      const p = await serve(extra);
      assert.match((await login(p.pop3Port, 'dave', 'dave-secret')).reply, expected, name);
      await p.stop();
    }
    assert.ok(slapd.count('EXT oid=1.3.6.1.4.1.1466.20037') >= 2, 'StartTLS was asked for');
  });

  it('R-X19 poplar user add/passwd/del refuse in one line with a non-zero exit; user list lists the directory', async () => {
    const p = await serve();
    for (const args of [['user', 'add', 'zoe', '--password-stdin'], ['user', 'passwd', 'carol', '--password-stdin'], ['user', 'del', 'carol']]) {
      const r = await p.cli(args, 'pw\n');
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, /^poplar: users live in the LDAP directory \(auth\.directory = "ldap", ldaps:\/\/127\.0\.0\.1:\d+\): add, change and remove them there\n$/);
    }
    const list = await p.cli(['user', 'list']);
    assert.equal(list.code, 0);
    assert.deepEqual(list.stdout.split('\n').filter((l) => l !== ''), ['carol\tmaildrop=carol.box', 'dave', 'erin', 'frank', 'gina']);
    const grant = await p.cli(['grant', 'dave', 'carol.box']);
    assert.equal(grant.code, 0, grant.stderr);
    assert.match((await login(p.pop3Port, 'dave/carol.box', 'dave-secret')).reply, /^\+OK carol\.box has/);
  });
});

describe('LDAP directory down', { skip }, () => {
  let slapd: Slapd;
  let p: PoplarProcess | undefined;
  before(async () => {
    slapd = await startSlapd(USERS);
  });
  after(async () => {
    await p?.cleanup();
    await slapd?.close();
  });

  it('R-X19 the directory stopped mid-run: -ERR [SYS/TEMP] at login, 451 at LMTP RCPT, no failure counted; logins work again after its restart', async () => {
    p = await startPoplar({ users: {}, overrides: await ldapOverrides(slapd) });
    assert.match((await login(p.pop3Port, 'carol', 'carol-secret')).reply, /^\+OK/);
    await slapd.stop();
    assert.equal((await login(p.pop3Port, 'carol', 'carol-secret')).reply, '-ERR [SYS/TEMP] Directory unavailable, try again later');
    assert.equal((await login(p.pop3Port, 'ghost', 'whatever')).reply, '-ERR [SYS/TEMP] Directory unavailable, try again later');
    const sent = await lmtpSend(p.lmtpPort, [{ from: 'a@example.net', to: ['carol@example.org'], message: message('while down') }]);
    assert.equal(sent.deliveries[0]!.rcpt[0]![0], 451);
    assert.equal(p.events('auth_failed').length, 0, 'an outage is no failed login');
    await slapd.start();
    assert.match((await login(p.pop3Port, 'carol', 'carol-secret')).reply, /^\+OK/);
    const again = await lmtpSend(p.lmtpPort, [{ from: 'a@example.net', to: ['carol@example.org'], message: message('after restart') }]);
    assert.equal(again.deliveries[0]!.rcpt[0]![0], 250);
  });

  it('R-X19 a directory that hangs answers -ERR [SYS/TEMP] within two ldap.timeout_ms, and logins work once it answers again', async (t) => {
    const q = await startPoplar({ users: {}, overrides: await ldapOverrides(slapd, ['ldap.timeout_ms=700']) });
    try {
      assert.match((await login(q.pop3Port, 'carol', 'carol-secret')).reply, /^\+OK/);
      slapd.pause();
      const started = performance.now();
      assert.equal((await login(q.pop3Port, 'dave', 'dave-secret')).reply, '-ERR [SYS/TEMP] Directory unavailable, try again later');
      const took = performance.now() - started;
      t.diagnostic(`answered after ${Math.round(took)} ms`);
      // Two timeouts at most (a reused connection, then a new one); the margin is for a loaded
      // machine (the whole suite runs four files at once), far below the client's 5 s wait.
      assert.ok(took >= 700 && took < 2 * 700 + 1800, `answered after ${Math.round(took)} ms`);
      slapd.resume();
      assert.match((await login(q.pop3Port, 'dave', 'dave-secret')).reply, /^\+OK/);
    } finally {
      slapd.resume();
      await q.cleanup();
    }
  });
});

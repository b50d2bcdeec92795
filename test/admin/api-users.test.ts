/**
 * R-X21 admin API over real HTTP: users (add, set password, delete; each checked by logging in
 * over POP3), validation errors, grants (R-K3), policy overrides (quota, retention, LOGIN-DELAY
 * seen in CAPA after login), per-maildrop counts and sizes, and a read-only directory.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ReadOnlyDirectory, UserRecord } from '../../src/auth/directory.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { startAdminHarness, type AdminHarness } from './harness.js';

async function pop3Login(port: number, user: string, password: string): Promise<string> {
  const c = await Pop3Client.connect(port);
  try {
    const u = await c.cmd(`USER ${user}`);
    if (!u.startsWith('+OK')) return u;
    return await c.cmd(`PASS ${password}`);
  } finally {
    c.close();
  }
}

describe('R-X21 admin API: users, grants, policy, maildrops', () => {
  let h: AdminHarness;
  before(async () => {
    h = await startAdminHarness({ users: { alice: 'wonderland' } });
  });
  after(() => h.close());

  it('R-X21 POST /users adds a user who then logs in over POP3', async () => {
    const r = await h.http('POST', '/api/v1/users', { name: 'carol', password: 'c4rol-secret' });
    assert.equal(r.status, 201);
    assert.deepEqual(r.json, { name: 'carol' });
    assert.match(await pop3Login(h.pop3Port, 'carol', 'c4rol-secret'), /^\+OK/);
    assert.ok(!h.logText().includes('c4rol-secret'), 'the password is not logged');
    assert.match(h.logText(), /"event":"admin_change","action":"user_add","user":"carol"/);
  });

  it('R-X21 POST /users refuses bad input with 400 and a code, and a duplicate with 409 EXISTS', async () => {
    const cases: Array<[unknown, string]> = [
      [{ name: 'dave' }, 'VALIDATION'],
      [{ name: 'dave', password: '' }, 'VALIDATION'],
      [{ name: 'dave', password: 'x', admin: true }, 'VALIDATION'],
      [{ name: 'dave', password: 12345 }, 'VALIDATION'],
      [{ name: 'bad name', password: 'x' }, 'INVALID_NAME'],
      ['{not json', 'VALIDATION'],
    ];
    for (const [body, code] of cases) {
      const r = await h.http('POST', '/api/v1/users', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.error.code, code, JSON.stringify(body));
      assert.equal(typeof r.json.error.message, 'string');
    }
    const dup = await h.http('POST', '/api/v1/users', { name: 'alice', password: 'x' });
    assert.equal(dup.status, 409);
    assert.equal(dup.json.error.code, 'EXISTS');
  });

  it('R-X21 PUT /users/{name}/password changes the POP3 password; an unknown user is 404', async () => {
    await h.http('POST', '/api/v1/users', { name: 'erin', password: 'old-pass' });
    const r = await h.http('PUT', '/api/v1/users/erin/password', { password: 'new-pass' });
    assert.equal(r.status, 204);
    assert.match(await pop3Login(h.pop3Port, 'erin', 'new-pass'), /^\+OK/);
    assert.match(await pop3Login(h.pop3Port, 'erin', 'old-pass'), /^-ERR/);
    const none = await h.http('PUT', '/api/v1/users/nobody/password', { password: 'x' });
    assert.equal(none.status, 404);
    assert.equal(none.json.error.code, 'NOT_FOUND');
  });

  it('R-X21 DELETE /users/{name} removes the user: the POP3 login fails', async () => {
    await h.http('POST', '/api/v1/users', { name: 'frank', password: 'frank-pw' });
    assert.equal((await h.http('DELETE', '/api/v1/users/frank')).status, 204);
    assert.match(await pop3Login(h.pop3Port, 'frank', 'frank-pw'), /^-ERR/);
    const again = await h.http('DELETE', '/api/v1/users/frank');
    assert.equal(again.status, 404);
    assert.equal(again.json.error.code, 'NOT_FOUND');
  });

  it('R-X21 GET /users pages through every user with quota and usage', async () => {
    for (const n of ['u1', 'u2', 'u3']) await h.http('POST', '/api/v1/users', { name: n, password: 'pw' });
    const names: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { json: { items: Array<{ name: string; quota: object; usage: object }>; next: string | null; writable: boolean } } =
        await h.http('GET', `/api/v1/users?limit=2${cursor === null ? '' : `&cursor=${cursor}`}`);
      assert.ok(page.json.items.length <= 2);
      assert.equal(page.json.writable, true);
      for (const u of page.json.items) {
        names.push(u.name);
        assert.deepEqual(Object.keys(u.quota).sort(), ['bytes', 'messages']);
        assert.deepEqual(Object.keys(u.usage).sort(), ['bytes', 'messages']);
      }
      cursor = page.json.next;
    } while (cursor !== null);
    assert.deepEqual(names, [...names].sort());
    for (const n of ['alice', 'carol', 'u1', 'u2', 'u3']) assert.ok(names.includes(n), n);
  });

  it('R-X21 grants: POST lets a user open another maildrop over POP3, GET lists it, DELETE takes it away', async () => {
    await h.http('POST', '/api/v1/users', { name: 'gina', password: 'gina-pw' });
    const r = await h.http('POST', '/api/v1/users/gina/grants', { mailbox: 'alice' });
    assert.equal(r.status, 201);
    assert.match(await pop3Login(h.pop3Port, 'gina/alice', 'gina-pw'), /^\+OK/);
    const list = await h.http('GET', '/api/v1/grants');
    assert.ok(list.json.items.some((g: { user: string; mailbox: string }) => g.user === 'gina' && g.mailbox === 'alice'));
    assert.equal((await h.http('POST', '/api/v1/users/gina/grants', { mailbox: 'alice' })).json.error.code, 'ALREADY_GRANTED');
    assert.equal((await h.http('POST', '/api/v1/users/gina/grants', { mailbox: 'a b' })).json.error.code, 'INVALID_NAME');
    assert.equal((await h.http('DELETE', '/api/v1/users/gina/grants/alice')).status, 204);
    assert.match(await pop3Login(h.pop3Port, 'gina/alice', 'gina-pw'), /^-ERR/);
    const again = await h.http('DELETE', '/api/v1/users/gina/grants/alice');
    assert.equal(again.status, 404);
    assert.equal(again.json.error.code, 'NOT_GRANTED');
  });

  it('R-X21 PATCH /users/{name}/policy sets quota, retention and login delay (CAPA after login shows it); null drops it', async () => {
    const r = await h.http('PATCH', '/api/v1/users/alice/policy', { quota_bytes: 1_000_000, retrieved_days: 7, login_delay: 300 });
    assert.equal(r.status, 200);
    assert.equal(r.json.effective.quota_bytes, 1_000_000);
    assert.deepEqual(r.json.overrides, { quota_bytes: 1_000_000, retrieved_days: 7, login_delay: 300 });
    const c = await Pop3Client.connect(h.pop3Port);
    try {
      await c.login('alice', 'wonderland');
      const capa = await c.multi('CAPA');
      assert.ok(capa.lines.includes('LOGIN-DELAY 300'), capa.lines.join('|'));
      assert.ok(capa.lines.includes('EXPIRE 7'), capa.lines.join('|'));
    } finally {
      c.close();
    }
    const users = await h.http('GET', '/api/v1/users?limit=1');
    assert.equal(users.json.items[0].quota.bytes, 1_000_000);
    const dropped = await h.http('PATCH', '/api/v1/users/alice/policy', { login_delay: null, retrieved_days: null });
    assert.deepEqual(dropped.json.overrides, { quota_bytes: 1_000_000 });
    assert.equal((await h.http('GET', '/api/v1/users/alice/policy')).json.effective.login_delay, 0);
    for (const body of [{}, { quota_bytes: -1 }, { quota_bytes: 'big' }, { quota_bytes: true }, { quota_bytes: '5' }, { nonsense: 1 }]) {
      const bad = await h.http('PATCH', '/api/v1/users/alice/policy', body);
      assert.equal(bad.status, 400, JSON.stringify(body));
      assert.equal(bad.json.error.code, 'VALIDATION');
    }
    assert.equal((await h.http('PATCH', '/api/v1/users/nobody/policy', { quota_bytes: 1 })).status, 404);
    assert.equal((await h.http('GET', '/api/v1/users/nobody/policy')).status, 404);
  });

  it('R-X21 GET /maildrops gives message counts and sizes of every maildrop', async () => {
    await h.store.deliver('alice', Buffer.from('Subject: one\r\n\r\nx\r\n'));
    await h.store.deliver('alice', Buffer.from('Subject: two\r\n\r\nyy\r\n'));
    const r = await h.http('GET', '/api/v1/maildrops?limit=500');
    const alice = r.json.items.find((m: { name: string }) => m.name === 'alice');
    const usage = await h.store.usage('alice');
    assert.deepEqual(alice, { name: 'alice', messages: usage.messages, bytes: usage.bytes });
    assert.ok(alice.messages >= 2);
  });
});

describe('R-X21 admin API with a read-only directory', () => {
  let h: AdminHarness;
  const records: UserRecord[] = [{ name: 'ldapuser', password: '{PLAIN}x', grants: ['shared'] }];
  const readOnly: ReadOnlyDirectory = {
    writable: false,
    note: 'users come from LDAP; change them there',
    lookup: async (name) => records.find((r) => r.name === name),
    list: async () => records,
  };
  before(async () => {
    h = await startAdminHarness({ apiDirectory: readOnly });
  });
  after(() => h.close());

  it('R-X21 lists users with writable false and the note; changes are refused with 409 READ_ONLY', async () => {
    const r = await h.http('GET', '/api/v1/users');
    assert.equal(r.json.writable, false);
    assert.equal(r.json.note, 'users come from LDAP; change them there');
    assert.deepEqual(r.json.items.map((u: { name: string }) => u.name), ['ldapuser']);
    for (const [method, path, body] of [
      ['POST', '/api/v1/users', { name: 'x', password: 'y' }],
      ['PUT', '/api/v1/users/ldapuser/password', { password: 'y' }],
      ['DELETE', '/api/v1/users/ldapuser', undefined],
      ['POST', '/api/v1/users/ldapuser/grants', { mailbox: 'other' }],
      ['DELETE', '/api/v1/users/ldapuser/grants/shared', undefined],
    ] as const) {
      const res = await h.http(method, path, body);
      assert.equal(res.status, 409, `${method} ${path}`);
      assert.equal(res.json.error.code, 'READ_ONLY');
    }
    const grants = await h.http('GET', '/api/v1/grants');
    assert.deepEqual(grants.json.items, [{ user: 'ldapuser', mailbox: 'shared' }]);
    const policy = await h.http('PATCH', '/api/v1/users/ldapuser/policy', { quota_messages: 10 });
    assert.equal(policy.status, 200, 'policy overrides are poplar\'s own, also for a read-only directory');
  });
});

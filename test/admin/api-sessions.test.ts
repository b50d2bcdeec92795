/**
 * R-X21 admin API over real HTTP against a real POP3 server: live sessions (listed while a POP3
 * client holds one open, ended by DELETE and the client disconnected), pagination, failed logins
 * with their penalty, the per-minute history and delivery counts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DeliveryAgent } from '../../src/delivery/agent.js';
import { createLogger } from '../../src/observability/logger.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { waitFor } from '../helpers/wait.js';
import { startAdminHarness, type AdminHarness } from './harness.js';

/** The current minute and the one before (a test may cross a minute boundary). */
const lastTwo = (series: number[]): number => series.at(-1)! + series.at(-2)!;

describe('R-X21 admin API: sessions and activity', () => {
  let h: AdminHarness;
  before(async () => {
    h = await startAdminHarness({ users: { alice: 'wonderland', bob: 'builder' }, delayMs: 5 });
  });
  after(() => h.close());

  it('R-X21 lists a live POP3 session with user, address, since, state and bytes sent', async () => {
    const c = await Pop3Client.connect(h.pop3Port);
    try {
      assert.match(await c.login('alice', 'wonderland'), /^\+OK/);
      const r = await h.http('GET', '/api/v1/sessions');
      assert.equal(r.status, 200);
      const s = r.json.items.find((i: { user: string }) => i.user === 'alice');
      assert.ok(s, JSON.stringify(r.json));
      assert.equal(s.address, '127.0.0.1');
      assert.equal(s.state, 'transaction');
      assert.equal(s.mailbox, 'alice');
      assert.ok(s.bytesSent > 0, 'the greeting and replies were counted');
      assert.ok(Math.abs(Date.parse(s.since) - Date.now()) < 60_000);
      assert.equal(r.json.next, null);
    } finally {
      c.close();
    }
  });

  it('R-X21 DELETE /sessions/{id} disconnects the POP3 client; an unknown id is 404 NOT_FOUND', async () => {
    const c = await Pop3Client.connect(h.pop3Port);
    await c.login('bob', 'builder');
    const list = await h.http('GET', '/api/v1/sessions');
    const id = list.json.items.find((i: { user: string }) => i.user === 'bob').id as string;
    const r = await h.http('DELETE', `/api/v1/sessions/${encodeURIComponent(id)}`);
    assert.equal(r.status, 204);
    await c.closed();
    await waitFor(async () => !(await h.http('GET', '/api/v1/sessions')).json.items.some((i: { id: string }) => i.id === id), 5000, 'session gone');
    assert.match(h.logText(), /"reason":"ended by admin"/);
    const again = await h.http('DELETE', `/api/v1/sessions/${encodeURIComponent(id)}`);
    assert.equal(again.status, 404);
    assert.equal(again.json.error.code, 'NOT_FOUND');
  });

  it('R-X21 lists are paginated with limit and cursor; bad limit or cursor is 400 with a code', async () => {
    const clients = await Promise.all([1, 2, 3].map(() => Pop3Client.connect(h.pop3Port)));
    try {
      const first = await h.http('GET', '/api/v1/sessions?limit=2');
      assert.equal(first.json.items.length, 2);
      assert.equal(typeof first.json.next, 'string');
      const second = await h.http('GET', `/api/v1/sessions?limit=2&cursor=${first.json.next}`);
      assert.equal(second.json.items.length, 1);
      assert.equal(second.json.next, null);
      const ids = [...first.json.items, ...second.json.items].map((i: { id: string }) => i.id);
      assert.equal(new Set(ids).size, 3);
      for (const q of ['limit=0', 'limit=501', 'limit=abc', 'other=1']) {
        const r = await h.http('GET', `/api/v1/sessions?${q}`);
        assert.equal(r.status, 400, q);
        assert.equal(r.json.error.code, 'VALIDATION', q);
      }
      const bad = await h.http('GET', '/api/v1/sessions?cursor=%21%21');
      assert.equal(bad.status, 400);
      assert.equal(bad.json.error.code, 'BAD_CURSOR');
    } finally {
      for (const c of clients) c.close();
    }
  });

  it('R-X21 failed logins appear by address and by user with the current penalty, and in the history', async () => {
    const c = await Pop3Client.connect(h.pop3Port);
    try {
      assert.match(await c.login('alice', 'wrong-password'), /^-ERR/);
    } finally {
      c.close();
    }
    const recent = await h.http('GET', '/api/v1/failed-logins?limit=1');
    assert.equal(recent.json.items[0].address, '127.0.0.1');
    assert.equal(recent.json.items[0].user, 'alice');
    const byAddress = await h.http('GET', '/api/v1/failed-logins/by-address');
    const a = byAddress.json.items.find((i: { key: string }) => i.key === '127.0.0.1');
    assert.ok(a.recentFailures >= 1);
    assert.ok(a.failures >= 1);
    assert.ok(a.penaltyMs >= 5, `penalty ${a.penaltyMs}`);
    const byUser = await h.http('GET', '/api/v1/failed-logins/by-user');
    assert.equal(byUser.json.items.find((i: { key: string }) => i.key === 'alice').failures, 1);
    const hist = await h.http('GET', '/api/v1/stats/history');
    assert.equal(hist.json.step, 60);
    assert.equal(hist.json.series.failedLogins.length, 60);
    assert.ok(lastTwo(hist.json.series.failedLogins) >= 1);
    assert.ok(lastTwo(hist.json.series.logins) >= 1);
  });

  it('R-X21 delivery counts and the deliveries series count real deliveries', async () => {
    const before = (await h.http('GET', '/api/v1/deliveries')).json;
    const agent = new DeliveryAgent({
      store: h.store, directory: h.directory, policies: h.policies, logger: createLogger('silent'), hostname: 'test.example',
      overQuota: 'reject', warnPercent: [], recipientDelimiter: '+',
    });
    await agent.deliver('alice', Buffer.from('Subject: hi\r\n\r\nhello\r\n'), { sender: 'a@example.org', recipient: 'alice', protocol: 'local' });
    const now = (await h.http('GET', '/api/v1/deliveries')).json;
    assert.equal(now.delivered, before.delivered + 1);
    assert.ok(now.bytes > before.bytes);
    assert.equal(typeof now.refused, 'object');
    const hist = await h.http('GET', '/api/v1/stats/history');
    assert.ok(lastTwo(hist.json.series.deliveries) >= 1);
  });
});

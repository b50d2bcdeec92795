/**
 * Retention (R-S18, R-X10): the sweeper with a clock the test controls (no sleeping), on both
 * backends; `poplar expire` beside a running server that has a live session; the scheduled sweep
 * inside `poplar serve`; and what CAPA advertises (RFC 2449 §6.5, §6.7).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';
import { RetentionSweeper } from '../../src/policy/retention.js';
import { expireValue, UserPolicies } from '../../src/policy/user-policy.js';
import type { MailStore } from '../../src/storage/mail-store.js';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import { MemoryMailStore } from '../../src/storage/memory/memory-store.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { startPoplar } from '../helpers/poplar-process.js';
import { waitFor } from '../helpers/wait.js';
import { lmtpSend, popFetch } from '../helpers/python-clients.js';

const DAY = 24 * 60 * 60 * 1000;
const NONE = { quotaBytes: 0, quotaMessages: 0, retrievedDays: 0, unretrievedDays: 0, loginDelay: 0, downloadBytesPerDay: 0 };

function capture(): { logger: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger('info', sink), lines };
}

for (const backend of ['memory', 'maildir'] as const) {
  it(`R-S18 the sweeper removes retrieved mail after retrieved_days and unretrieved after unretrieved_days, by the clock it is given (${backend})`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'poplar-retention-'));
    const store: MailStore = backend === 'memory' ? new MemoryMailStore() : new MaildirStore({ path: (m) => join(dir, 'mail', m) });
    try {
      const t0 = Date.UTC(2025, 5, 1);
      const policies = new UserPolicies(join(dir, 'user-policy.toml'), { ...NONE, retrievedDays: 7, unretrievedDays: 60 });
      await policies.update('bob', { retrieved_days: 1, unretrieved_days: 0 });
      for (const user of ['alice', 'bob']) {
        await store.deliver(user, Buffer.from(`Subject: ${user} read\r\n\r\nx\r\n`), { received: t0 });
        await store.deliver(user, Buffer.from(`Subject: ${user} unread\r\n\r\ny\r\n`), { received: t0 });
        await store.deliver(user, Buffer.from(`Subject: ${user} newer\r\n\r\nz\r\n`), { received: t0 + 30 * DAY });
        const snap = await store.open(user, { exclusive: false });
        await snap.commit({ expunge: [], seen: [snap.messages[0]!.id] }); // RETR'd in a session
        await snap.release();
      }
      let now = t0;
      const { logger, lines } = capture();
      const sweeper = new RetentionSweeper({ store, policies, mailboxes: async () => ['alice', 'bob'], logger, now: () => now });
      const left = async (user: string) => (await store.usage(user)).messages;
      const removedAt = async (at: number) => {
        now = at;
        const r = await sweeper.sweep();
        return Object.fromEntries(r.map((m) => [m.mailbox, m.removed.map((x) => x.uid)]));
      };

      assert.deepEqual(await removedAt(t0 + DAY - 1), { alice: [], bob: [] }, 'nothing is old enough yet');
      assert.deepEqual(await removedAt(t0 + DAY), { alice: [], bob: [1] }, "bob's read message goes after 1 day");
      assert.deepEqual(await removedAt(t0 + 7 * DAY - 1), { alice: [], bob: [] });
      assert.equal(await left('alice'), 3);
      assert.deepEqual(await removedAt(t0 + 7 * DAY), { alice: [1], bob: [] }, "alice's read message goes after 7 days");
      assert.deepEqual(await removedAt(t0 + 60 * DAY), { alice: [2], bob: [] }, 'unread after 60 days');
      assert.deepEqual(await removedAt(t0 + 90 * DAY), { alice: [3], bob: [] });
      assert.deepEqual([await left('alice'), await left('bob')], [0, 2], 'bob never loses unread mail');
      const logged = lines.filter((l) => l['event'] === 'expired').map((l) => [l['mailbox'], l['uids']]);
      assert.deepEqual(logged, [['bob', [1]], ['alice', [1]], ['alice', [2]], ['alice', [3]]]);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
}

it('R-X10 EXPIRE follows RFC 2449 §6.7: the smaller retention in days, NEVER only when nothing is ever deleted', async () => {
  assert.equal(expireValue({ retrievedDays: 0, unretrievedDays: 0 }), 'NEVER');
  assert.equal(expireValue({ retrievedDays: 7, unretrievedDays: 60 }), '7');
  assert.equal(expireValue({ retrievedDays: 0, unretrievedDays: 60 }), '60', 'unread mail expires: not NEVER');
  assert.equal(expireValue({ retrievedDays: 30, unretrievedDays: 10 }), '10');
  const dir = await mkdtemp(join(tmpdir(), 'poplar-capa-'));
  try {
    const policies = new UserPolicies(join(dir, 'p.toml'), { ...NONE, retrievedDays: 7 });
    assert.deepEqual(await policies.capabilities(undefined), ['EXPIRE 7']);
    await policies.update('bob', { retrieved_days: 0, login_delay: 600 });
    assert.deepEqual(await policies.capabilities(undefined), ['EXPIRE 7 USER', 'LOGIN-DELAY 0 USER']);
    assert.deepEqual(await policies.capabilities('bob'), ['EXPIRE NEVER', 'LOGIN-DELAY 600']);
    assert.deepEqual(await policies.capabilities('alice'), ['EXPIRE 7']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

describe('retention in a running server', () => {
  it('R-X10 CAPA after login shows EXPIRE per user (NEVER without a policy) and LOGIN-DELAY where configured', async () => {
    const p = await startPoplar({
      users: { alice: 'wonderland', bob: 'builder' },
      overrides: ['retention.retrieved_days=7', 'retention.unretrieved_days=60', 'policy.login_delay=900'],
    });
    try {
      const set = await p.cli(['retention', 'set', 'bob', '--retrieved-days', '0', '--unretrieved-days', '0', '--login-delay', '0']);
      assert.equal(set.code, 0, set.stderr);
      assert.match(set.stdout, /CAPA EXPIRE NEVER/);
      const alice = await popFetch(p.pop3Port, 'alice', 'wonderland'); // once: LOGIN-DELAY 900 is enforced
      assert.deepEqual(alice.capa['EXPIRE'], ['7']);
      assert.deepEqual(alice.capa['LOGIN-DELAY'], ['900']);
      const bob = await popFetch(p.pop3Port, 'bob', 'builder');
      assert.deepEqual(bob.capa['EXPIRE'], ['NEVER']);
      assert.equal(bob.capa['LOGIN-DELAY'], undefined, 'no LOGIN-DELAY where none is configured');
      const c = await Pop3Client.connect(p.pop3Port);
      c.write('CAPA\r\n');
      assert.match(await c.line(), /^\+OK/);
      const before = (await c.body()).lines;
      assert.ok(before.includes('EXPIRE 7 USER'), before.join('|'));
      assert.ok(before.includes('LOGIN-DELAY 900 USER'), before.join('|'));
      c.close();
    } finally {
      await p.cleanup();
    }
  });

  it('R-S18 R-S3 poplar expire skips a maildrop a live session has open, then removes the expired mail and logs the uids', async () => {
    const p = await startPoplar({ overrides: ['retention.retrieved_days=2', 'retention.unretrieved_days=2', 'retention.sweep_interval=0'] });
    try {
      const msg = (s: string) => Buffer.from(`Subject: ${s}\r\n\r\n${s}\r\n`);
      await lmtpSend(p.lmtpPort, ['old1', 'old2', 'fresh'].map((s) => ({ from: 's@example.org', to: ['alice@example.org'], message: msg(s) })));
      // The clock the test controls here is the files' arrival time: two messages are 3 days old.
      const cur = join(p.dataDir, 'mail', 'alice', 'new');
      // Picked by content: file names do not sort in delivery order (the M<usec> part is not padded).
      const old = new Date(Date.now() - 3 * DAY);
      for (const f of await readdir(cur)) {
        if (/\r\nold\d\r\n$/.test(await readFile(join(cur, f), 'latin1'))) await utimes(join(cur, f), old, old);
      }

      const session = await Pop3Client.connect(p.pop3Port);
      assert.match(await session.login('alice', 'wonderland'), /^\+OK alice has 3 messages/);
      const skipped = await p.cli(['expire']);
      assert.equal(skipped.code, 0, skipped.stderr);
      assert.match(skipped.stdout, /^alice: in use by a POP3 session, skipped$/m);
      const retr = await session.multi('RETR 1');
      assert.match(retr.status, /^\+OK/, 'the session can still read the message expire left alone');
      assert.ok(retr.lines.includes('old1'));
      assert.match(await session.cmd('QUIT'), /^\+OK/);
      await session.closed();
      // The server keeps its session marker MARKER_LINGER_MS after the last session (docs/delivery.md).
      const markers = async () => (await readdir(join(p.dataDir, 'mail', 'alice'))).filter((n) => n.startsWith('poplar-session.'));
      const markerGone = () => waitFor(async () => (await markers()).length === 0, 5000, 'the idle marker gone a moment after the last session');
      await markerGone();

      const dry = await p.cli(['expire', '--dry-run']);
      assert.match(dry.stdout, /^alice: would remove 2 message\(s\), \d+ octets, uids 1,2$/m);
      assert.equal((await popFetch(p.pop3Port, 'alice', 'wonderland')).messages.length, 3, 'a dry run removes nothing');
      await markerGone();
      const real = await p.cli(['expire']);
      assert.match(real.stdout, /^alice: removed 2 message\(s\), \d+ octets, uids 1,2$/m);
      const logged = real.stderr.split('\n').filter((l) => l.includes('"event":"expired"')).map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(logged.map((l) => [l['mailbox'], l['uids']]), [['alice', [1, 2]]]);
      const after = await popFetch(p.pop3Port, 'alice', 'wonderland');
      assert.deepEqual(after.messages.map((m) => /Subject: (\w+)/.exec(m.bytes.toString())?.[1]), ['fresh']);
    } finally {
      await p.cleanup();
    }
  });

  it("R-S18 the server's scheduled sweeper removes expired mail by itself", async () => {
    const p = await startPoplar({ overrides: ['retention.unretrieved_days=1', 'retention.sweep_interval=1'] });
    try {
      await lmtpSend(p.lmtpPort, [{ from: 's@example.org', to: ['alice@example.org'], message: Buffer.from('Subject: old\r\n\r\nx\r\n') }]);
      const root = join(p.dataDir, 'mail', 'alice');
      const old = new Date(Date.now() - 2 * DAY);
      // A sweep (every second) may move the message from new/ to cur/ at any moment: it is dated
      // wherever it is (a rename keeps the date). Regression: dating new/ only found it empty.
      const dated = async (): Promise<boolean> => {
        for (const sub of ['new', 'cur']) {
          for (const f of await readdir(join(root, sub))) {
            const done = await utimes(join(root, sub, f), old, old).then(() => true, (e: NodeJS.ErrnoException) => {
              if (e.code === 'ENOENT') return false; // moved meanwhile: looked for again
              throw e;
            });
            if (done) return true;
          }
        }
        return false;
      };
      await waitFor(dated, 5000, 'the delivered message dated two days back');
      await waitFor(() => p.events('expired').length > 0, 10_000, 'the scheduled sweep');
      assert.deepEqual(p.events('expired')[0]!['uids'], [1]);
      assert.equal((await popFetch(p.pop3Port, 'alice', 'wonderland')).messages.length, 0);
    } finally {
      await p.cleanup();
    }
  });
});

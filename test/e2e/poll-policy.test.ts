/**
 * R-X10 over real sockets, with an injected clock (no sleeps): LOGIN-DELAY (RFC 2449 §6.5) is
 * enforced per maildrop and survives a restart, and the optional daily download cap answers
 * RETR/TOP with `-ERR [SYS/TEMP]` once spent, per UTC day.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pop3Client } from '../helpers/pop3-client.js';
import { waitFor, withServer, type TestServerOptions } from '../helpers/test-server.js';
import { startPoplar } from '../helpers/poplar-process.js';
import { UserPolicies, type EffectivePolicy } from '../../src/policy/user-policy.js';
import { PollState, stateFileName } from '../../src/policy/poll-state.js';
import { MemoryMailStore } from '../../src/storage/memory/memory-store.js';

const NONE: EffectivePolicy = { quotaBytes: 0, quotaMessages: 0, retrievedDays: 0, unretrievedDays: 0, loginDelay: 0, downloadBytesPerDay: 0 };
const USERS = { alice: { password: 'wonderland' }, bob: { password: 'builder' }, admin: { password: 'root' } };
const DAY = 86_400_000;

/** R-X16: these servers stay in this process in the 2-worker pass: a clock moved by hand cannot reach `poplar serve`. */
const FAKE_CLOCK = 'a clock the test moves by hand (`now`)';

/** A clock the test moves by hand. */
function clock(start: number): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'poplar-poll-'));
});
after(() => rm(dir, { recursive: true, force: true }));

let n = 0;
/** A fresh policy file (defaults + per-user overrides) and state folder for one test. */
async function setup(
  defaults: Partial<EffectivePolicy>,
  users: Record<string, Parameters<UserPolicies['update']>[1]> = {},
): Promise<{ policy: UserPolicies; stateDir: string }> {
  const base = join(dir, String(++n));
  const policy = new UserPolicies(`${base}-policy.toml`, { ...NONE, ...defaults });
  for (const [name, o] of Object.entries(users)) await policy.update(name, o);
  return { policy, stateDir: `${base}-state` };
}

async function login(port: number, user: string, password: string): Promise<{ c: Pop3Client; reply: string }> {
  const c = await Pop3Client.connect(port);
  return { c, reply: await c.login(user, password) };
}

describe('R-X10 LOGIN-DELAY enforced', () => {
  it('R-X10 a login sooner than LOGIN-DELAY after the last one gets -ERR [LOGIN-DELAY] and stays in AUTHORIZATION, not counted as a failure', async () => {
    const { policy, stateDir } = await setup({ loginDelay: 300 });
    const t = clock(Date.UTC(2026, 0, 10, 12, 0, 0));
    await withServer({ users: USERS, policy, pollState: new PollState(stateDir), now: t.now, inProcess: FAKE_CLOCK }, async (s) => {
      const first = await login(s.port, 'alice', 'wonderland');
      assert.match(first.reply, /^\+OK/);
      assert.ok((await first.c.multi('CAPA')).lines.includes('LOGIN-DELAY 300'));
      await first.c.cmd('QUIT');

      t.advance(100_000);
      const c = await Pop3Client.connect(s.port);
      // More refusals than max_auth_failures (3): none of them counts as a failed login.
      for (let i = 0; i < 4; i++) {
        assert.equal(await c.login('alice', 'wonderland'), '-ERR [LOGIN-DELAY] Minimum time between logins is 300 seconds, try again in 200 seconds');
      }
      assert.match(await c.cmd('STAT'), /^-ERR/, 'still in AUTHORIZATION');
      assert.equal(s.logs.filter((l) => l['event'] === 'auth_failed').length, 0);
      assert.equal(s.logs.filter((l) => l['event'] === 'login_delay').length, 4);
      // AUTH takes the same path.
      assert.match(await c.cmd(`AUTH PLAIN ${Buffer.from('\0alice\0wonderland').toString('base64')}`), /^-ERR \[LOGIN-DELAY\]/);
      // A wrong password is still just a wrong password (R-S13: LOGIN-DELAY only after the right one).
      assert.equal(await c.login('alice', 'nope'), '-ERR [AUTH] Authentication failed');

      // Refused attempts do not restart the wait: 300 s after the first login, the same session gets in.
      t.advance(199_000);
      assert.match(await c.login('alice', 'wonderland'), /^-ERR \[LOGIN-DELAY\] .* try again in 1 second$/);
      t.advance(1000);
      assert.match(await c.login('alice', 'wonderland'), /^\+OK/);
      await c.cmd('QUIT');

      // Per maildrop: bob's first login is not held up by alice's.
      const b = await login(s.port, 'bob', 'builder');
      assert.match(b.reply, /^\+OK/);
      b.c.close();
    });
  });

  it('R-X10 LOGIN-DELAY follows the per-user value CAPA shows; 0 turns it off for that user', async () => {
    const { policy, stateDir } = await setup({ loginDelay: 0 }, { alice: { login_delay: 60 }, bob: { login_delay: 0 } });
    const t = clock(Date.UTC(2026, 0, 10, 12, 0, 0));
    await withServer({ users: USERS, policy, pollState: new PollState(stateDir), now: t.now, inProcess: FAKE_CLOCK }, async (s) => {
      for (let i = 0; i < 2; i++) {
        const b = await login(s.port, 'bob', 'builder');
        assert.match(b.reply, /^\+OK/, 'bob has no login delay');
        await b.c.cmd('QUIT');
      }
      const a = await login(s.port, 'alice', 'wonderland');
      assert.ok((await a.c.multi('CAPA')).lines.includes('LOGIN-DELAY 60'));
      await a.c.cmd('QUIT');
      t.advance(59_000);
      assert.match((await login(s.port, 'alice', 'wonderland')).reply, /^-ERR \[LOGIN-DELAY\] Minimum time between logins is 60 seconds/);
      t.advance(1000);
      assert.match((await login(s.port, 'alice', 'wonderland')).reply, /^\+OK/);
    });
  });

  it('R-X10 the last login survives a restart of the server (kept in policy.state_dir)', async () => {
    const { policy, stateDir } = await setup({ loginDelay: 600 });
    const t = clock(Date.UTC(2026, 0, 10, 12, 0, 0));
    const opts = (): TestServerOptions => ({ users: USERS, policy, pollState: new PollState(stateDir), now: t.now, inProcess: FAKE_CLOCK });
    await withServer(opts(), async (s) => {
      const a = await login(s.port, 'alice', 'wonderland');
      assert.match(a.reply, /^\+OK/);
      await a.c.cmd('QUIT');
    });
    const saved = JSON.parse(await readFile(join(stateDir, stateFileName('alice')), 'utf8')) as Record<string, unknown>;
    assert.equal(saved['last_login'], t.now());
    t.advance(300_000);
    await withServer(opts(), async (s) => {
      assert.match((await login(s.port, 'alice', 'wonderland')).reply, /^-ERR \[LOGIN-DELAY\] .* try again in 300 seconds$/);
      t.advance(300_000);
      assert.match((await login(s.port, 'alice', 'wonderland')).reply, /^\+OK/);
    });
  });

  it('R-X10 R-X14 a master user opening a maildrop neither waits for nor restarts its LOGIN-DELAY', async () => {
    const { policy, stateDir } = await setup({ loginDelay: 300 });
    const t = clock(Date.UTC(2026, 0, 10, 12, 0, 0));
    await withServer({ users: USERS, policy, pollState: new PollState(stateDir), now: t.now, inProcess: FAKE_CLOCK, settings: { masterUsers: ['admin'] } }, async (s) => {
      for (let i = 0; i < 2; i++) {
        const m = await login(s.port, 'alice*admin', 'root');
        assert.match(m.reply, /^\+OK/);
        await m.c.cmd('QUIT');
      }
      const a = await login(s.port, 'alice', 'wonderland');
      assert.match(a.reply, /^\+OK/, 'the master logins did not count as alice polling');
      await a.c.cmd('QUIT');
      assert.match((await login(s.port, 'alice', 'wonderland')).reply, /^-ERR \[LOGIN-DELAY\]/);
    });
  });
});

describe('R-X10 daily download cap', () => {
  /** A message of exactly `size` octets of CRLF text (no dot lines). */
  const message = (size: number, tag: string): Buffer => {
    const head = `Subject: ${tag}\r\n\r\n`;
    const line = 'x'.repeat(98) + '\r\n';
    let body = '';
    while (head.length + body.length + line.length + 2 <= size) body += line;
    body += 'y'.repeat(Math.max(0, size - head.length - body.length - 2)) + '\r\n';
    return Buffer.from(head + body);
  };

  it('R-X10 RETR and TOP answer -ERR [SYS/TEMP] once the octets sent that day reach the cap; a message started below it is sent whole; the next UTC day starts afresh', async () => {
    const { policy, stateDir } = await setup({ downloadBytesPerDay: 1000 });
    const t = clock(Date.UTC(2026, 0, 10, 23, 0, 0));
    await withServer({ users: USERS, policy, pollState: new PollState(stateDir), now: t.now, inProcess: FAKE_CLOCK }, async (s) => {
      for (let i = 1; i <= 3; i++) await s.store.deliver('alice', message(600, `m${i}`));
      const c = (await login(s.port, 'alice', 'wonderland')).c;
      const r1 = await c.multi('RETR 1');
      assert.match(r1.status, /^\+OK 600 octets/);
      const r2 = await c.multi('RETR 2'); // 603 octets counted so far: below the cap, so sent whole
      assert.match(r2.status, /^\+OK 600 octets/);
      assert.equal(r2.raw.length, r1.raw.length);
      assert.equal(await c.cmd('RETR 3'), '-ERR [SYS/TEMP] Daily download limit reached, try again after 00:00 UTC');
      assert.equal(await c.cmd('TOP 3 0'), '-ERR [SYS/TEMP] Daily download limit reached, try again after 00:00 UTC');
      assert.match(await c.cmd('RETR 9'), /^-ERR (?!\[SYS)/, 'a bad message number is still just that');
      assert.match(await c.cmd('STAT'), /^\+OK 3 1800/, 'the session goes on');
      // Per maildrop and day, across sessions: another session of alice is refused too; bob is not.
      const c2 = (await login(s.port, 'alice', 'wonderland')).c;
      assert.match(await c2.cmd('RETR 3'), /^-ERR \[SYS\/TEMP\] Daily download limit reached/);
      c2.close();
      await s.store.deliver('bob', message(600, 'b1'));
      const b = (await login(s.port, 'bob', 'builder')).c;
      assert.match((await b.multi('RETR 1')).status, /^\+OK/);
      b.close();
      // 00:00 UTC: a new day, a new allowance, in the same session.
      t.advance(3_600_000);
      const r3 = await c.multi('RETR 3');
      assert.match(r3.status, /^\+OK 600 octets/);
      await c.cmd('QUIT');
    });
    const saved = JSON.parse(await readFile(join(stateDir, stateFileName('alice')), 'utf8')) as Record<string, unknown>;
    assert.equal(saved['day'], '2026-01-11');
    assert.equal(saved['octets'], 603, 'the octets RETR 3 sent on the new day (body and terminator)');
  });

  it('R-X10 TOP counts the octets it sends, not the message size; the count survives a restart; a per-user override wins', async () => {
    const { policy, stateDir } = await setup({ downloadBytesPerDay: 0 }, { alice: { download_bytes_per_day: 4040 } });
    const t = clock(Date.UTC(2026, 0, 10, 8, 0, 0));
    // One memory store across the restart (its close() keeps the mail).
    const store = new MemoryMailStore();
    const opts = (): TestServerOptions => ({ users: USERS, policy, pollState: new PollState(stateDir), now: t.now, inProcess: FAKE_CLOCK, store });
    await store.deliver('alice', message(4000, 'big'));
    let sent = 0;
    await withServer(opts(), async (s) => {
      const c = (await login(s.port, 'alice', 'wonderland')).c;
      for (let i = 0; i < 3; i++) {
        const top = await c.multi('TOP 1 0');
        assert.match(top.status, /^\+OK/);
        sent += top.raw.length;
      }
      await c.cmd('QUIT');
    });
    assert.equal(sent, 3 * 19, 'TOP 1 0 sent only the header block and the blank line, 19 octets each time');
    const saved = JSON.parse(await readFile(join(stateDir, stateFileName('alice')), 'utf8')) as Record<string, unknown>;
    assert.equal(saved['octets'], sent);
    await withServer(opts(), async (s) => {
      const c = (await login(s.port, 'alice', 'wonderland')).c;
      assert.match((await c.multi('RETR 1')).status, /^\+OK 4000 octets/); // 57 octets counted: under the cap when it starts
      // 57 + 4003 = 4060 >= 4040; without the 57 kept from before the restart it would be 4003, under it.
      assert.match(await c.cmd('RETR 1'), /^-ERR \[SYS\/TEMP\] Daily download limit reached/, 'the count from before the restart was kept');
      await c.cmd('QUIT');
      await s.store.deliver('bob', message(4000, 'b'));
      const b = (await login(s.port, 'bob', 'builder')).c;
      for (let i = 0; i < 3; i++) assert.match((await b.multi('RETR 1')).status, /^\+OK/, 'bob: the server default, unlimited');
      b.close();
    });
  });

  it('R-X10 a transfer the client breaks off still counts the octets sent', async () => {
    const { policy, stateDir } = await setup({ downloadBytesPerDay: 1 << 30 });
    const t = clock(Date.UTC(2026, 0, 10, 8, 0, 0));
    const size = 32 * 1024 * 1024;
    await withServer({ users: USERS, policy, pollState: new PollState(stateDir), now: t.now, inProcess: FAKE_CLOCK }, async (s) => {
      await s.store.deliver('alice', message(size, 'huge'));
      const c = (await login(s.port, 'alice', 'wonderland')).c;
      c.write('RETR 1\r\n');
      assert.match(await c.line(), /^\+OK/);
      c.close(); // hang up after the first octets
      await waitFor(() => s.logs.some((l) => l['event'] === 'session_end'));
    });
    const saved = JSON.parse(await readFile(join(stateDir, stateFileName('alice')), 'utf8')) as Record<string, unknown>;
    const octets = saved['octets'] as number;
    assert.ok(octets > 0 && octets < size, `counted ${octets} of ${size} octets`);
  });
});

describe('R-X10 in poplar serve', () => {
  it('R-X10 poplar serve enforces policy.login_delay across a restart (state in {data_dir}/policy-state)', async () => {
    const overrides = ['policy.login_delay=600'];
    const first = await startPoplar({ overrides });
    try {
      const a = await login(first.pop3Port, 'alice', 'wonderland');
      assert.match(a.reply, /^\+OK/);
      await a.c.cmd('QUIT');
      await first.stop();
      const files = await readdir(join(first.dataDir, 'policy-state'));
      assert.deepEqual(files, ['alice.json']);
      const second = await startPoplar({ overrides, dataDir: first.dataDir, users: {} });
      try {
        assert.match((await login(second.pop3Port, 'alice', 'wonderland')).reply, /^-ERR \[LOGIN-DELAY\] Minimum time between logins is 600 seconds/);
      } finally {
        await second.kill();
      }
    } finally {
      await first.cleanup();
    }
  });
});

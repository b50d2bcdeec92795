/** R-X9 failed-login delay: grows per IP and per user, capped, fades, ignores a stale password. */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { LoginThrottle, RECENT_FAILURES } from './throttle.js';

function make(): { t: LoginThrottle; clock: { now: number } } {
  const clock = { now: 1_000_000 };
  return { t: new LoginThrottle({ baseMs: 2000, maxMs: 15000, windowMs: 600_000, now: () => clock.now }), clock };
}

it('R-X9 the delay doubles per failure from 2 s and stops at 15 s', async () => {
  const { t } = make();
  const delays: number[] = [];
  for (const pw of ['a', 'b', 'c', 'd', 'e']) delays.push(await await t.failure('192.0.2.1', 'alice', pw));
  assert.deepEqual(delays, [2000, 4000, 8000, 15000, 15000]);
});

it('R-X9 the delay grows per user across IPs and per IP across users', async () => {
  const { t } = make();
  assert.equal(await t.failure('192.0.2.1', 'alice', 'x'), 2000);
  assert.equal(await t.failure('192.0.2.2', 'alice', 'y'), 4000, 'same user, new IP');
  assert.equal(await t.failure('192.0.2.3', 'bob', 'x'), 2000);
  assert.equal(await t.failure('192.0.2.3', 'carol', 'x'), 4000, 'same IP, new user');
});

it('R-X9 a client repeating the same stale password does not make the delay grow', async () => {
  const { t } = make();
  const delays: number[] = [];
  for (let i = 0; i < 6; i++) delays.push(await await t.failure('192.0.2.9', 'phone-user', 'old-password'));
  assert.deepEqual(delays, [2000, 2000, 2000, 2000, 2000, 2000]);
  assert.equal(await t.failure('192.0.2.9', 'phone-user', 'a-new-guess'), 4000);
});

it('R-X9 counters fade after the window and a success clears the user', async () => {
  const { t, clock } = make();
  await t.failure('192.0.2.1', 'alice', 'a');
  await t.failure('192.0.2.1', 'alice', 'b');
  assert.equal(await t.current('192.0.2.1', 'alice'), 4000);
  clock.now += 600_001;
  assert.equal(await t.current('192.0.2.1', 'alice'), 0);
  await t.failure('192.0.2.7', 'dave', 'a');
  t.success('dave');
  assert.equal(await t.current('192.0.2.8', 'dave'), 0);
  assert.equal(await t.current('192.0.2.7'), 2000, 'the IP keeps its count');
});

it('R-X9 memory stays bounded by maxEntries', async () => {
  const t = new LoginThrottle({ baseMs: 1, maxMs: 10, windowMs: 1e9, maxEntries: 100 });
  for (let i = 0; i < 10_000; i++) await t.failure(`10.0.${i >> 8}.${i & 255}`, `user${i}`, 'pw');
  const sizes = (t as unknown as { shared: { ips: Map<string, unknown>; users: Map<string, unknown> } }).shared;
  assert.ok(sizes.ips.size <= 100 && sizes.users.size <= 100);
});

it('R-X9 R-S20 a reload changes the delays and the window but keeps the counters', async () => {
  const { t, clock } = make();
  await t.failure('192.0.2.1', 'alice', 'a');
  await t.failure('192.0.2.1', 'alice', 'b');
  t.configure({ baseMs: 100, maxMs: 1000, windowMs: 1000 });
  assert.equal(await t.failure('192.0.2.1', 'alice', 'c'), 400, 'third failure, new base');
  assert.equal(await t.failure('192.0.2.1', 'alice', 'd'), 800);
  assert.equal(await t.failure('192.0.2.1', 'alice', 'e'), 1000, 'new cap');
  clock.now += 1001;
  assert.equal(await t.current('192.0.2.1', 'alice'), 0, 'new window');
  t.configure({ baseMs: 0, maxMs: 1000, windowMs: 1000 });
  assert.equal(await t.failure('192.0.2.1', 'alice', 'f'), 0, 'base 0 turns the delay off');
});

it('R-X21 keeps the last RECENT_FAILURES failed logins, newest first, and reports the penalty of an address and a user', async () => {
  let now = 1_000_000;
  const t = new LoginThrottle({ baseMs: 100, maxMs: 1000, windowMs: 60_000, now: () => now });
  for (let i = 0; i < RECENT_FAILURES + 5; i++) {
    now++;
    await t.failure(`10.0.0.${i % 3}`, i % 2 === 0 ? 'alice' : undefined, `pw${i}`);
  }
  const recent = t.recent();
  assert.equal(recent.length, RECENT_FAILURES);
  assert.equal(recent[0]!.at, now, 'newest first');
  assert.equal(recent.at(-1)!.at, now - RECENT_FAILURES + 1, 'the oldest were overwritten');
  // Failures counted among the ones kept: alice's of the last RECENT_FAILURES (every other one).
  assert.deepEqual(await t.penalty('user', 'alice'), { failures: RECENT_FAILURES / 2, delayMs: 1000 });
  assert.equal(await t.penalty('address', '10.9.9.9'), undefined);
  now += 60_001;
  assert.equal(await t.penalty('address', '10.0.0.1'), undefined, 'faded after the window');
});

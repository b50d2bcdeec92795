/**
 * R-X10's persisted poll state and limiter, on disk and with an injected clock: the file per
 * maildrop, what a damaged file means, write ordering, and the edge cases of the clock.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PollState, stateFileName } from '../../src/policy/poll-state.js';
import { PollLimiter, utcDay, type DownloadMeter, type PollLimitValues } from '../../src/policy/poll-limits.js';
import { Pop3Error } from '../../src/errors.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'poplar-pollstate-'));
});
after(() => rm(dir, { recursive: true, force: true }));

let n = 0;
const fresh = (): string => join(dir, `s${++n}`);

function limiter(state: PollState, values: PollLimitValues, now: () => number): PollLimiter {
  return new PollLimiter({ policy: { get: async () => values }, state, now });
}

async function refused(p: Promise<unknown>): Promise<Pop3Error> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof Pop3Error);
    return e;
  }
  assert.fail('expected a refusal');
}

describe('R-X10 poll state', () => {
  it('R-X10 one file per maildrop, named safely: no path separators, long names hashed', async () => {
    assert.equal(stateFileName('alice'), 'alice.json');
    assert.equal(stateFileName('../etc/passwd'), '..%2Fetc%2Fpasswd.json');
    assert.equal(stateFileName('a*b'), 'a%2Ab.json');
    assert.match(stateFileName('x'.repeat(300)), /^sha256-[0-9a-f]{64}\.json$/);
    const d = fresh();
    const s = new PollState(d);
    for (const name of ['../escape', 'chloé', 'y'.repeat(300)]) {
      (await s.get(name)).lastLogin = 1;
      await s.save(name);
    }
    const files = (await readdir(d)).sort();
    assert.equal(files.length, 3);
    assert.ok(files.every((f) => !f.includes('/') && f.endsWith('.json') && Buffer.byteLength(f) < 255), files.join(' '));
    const again = new PollState(d);
    assert.equal((await again.get('../escape')).lastLogin, 1);
    assert.equal((await again.get('y'.repeat(300))).lastLogin, 1);
  });

  it('R-X10 a damaged or foreign state file fails open (no previous login) and is replaced on the next write', async () => {
    const d = fresh();
    await mkdir(d, { recursive: true });
    await writeFile(join(d, stateFileName('alice')), '{"last_login": 17');
    await writeFile(join(d, stateFileName('bob')), '{"last_login":"yesterday","day":"x","octets":-5}');
    const s = new PollState(d);
    assert.deepEqual(await s.get('alice'), {});
    assert.deepEqual(await s.get('bob'), {});
    const t = 1_700_000_000_000;
    const l = limiter(s, { loginDelay: 300, downloadBytesPerDay: 0 }, () => t);
    await (await l.admitLogin('alice')).confirm();
    assert.deepEqual(JSON.parse(await readFile(join(d, stateFileName('alice')), 'utf8')), { last_login: t });
  });

  it('R-X10 writes of one file run in order and the last value wins; flush waits for them', async () => {
    const d = fresh();
    const s = new PollState(d);
    const r = await s.get('alice');
    const saves: Array<Promise<void>> = [];
    for (let i = 1; i <= 50; i++) {
      r.octets = i;
      saves.push(s.save('alice'));
    }
    await s.flush();
    await Promise.all(saves);
    assert.equal(JSON.parse(await readFile(join(d, stateFileName('alice')), 'utf8')).octets, 50);
    assert.deepEqual((await readdir(d)).filter((f) => f.endsWith('.tmp')), [], 'no temporary files left');
  });

  it('R-X10 a failed write is reported and the limits still hold in memory', async () => {
    const blocker = fresh();
    await writeFile(blocker, 'a file where the state folder should be');
    const errors: string[] = [];
    const state = new PollState(join(blocker, 'state'));
    const t = 1_700_000_000_000;
    const l = new PollLimiter({ policy: { get: async () => ({ loginDelay: 60, downloadBytesPerDay: 0 }) }, state, now: () => t, onError: (_e, m) => errors.push(m) });
    await (await l.admitLogin('alice')).confirm();
    assert.deepEqual(errors, ['alice']);
    assert.equal((await refused(l.admitLogin('alice'))).code, 'LOGIN_DELAY');
  });
});

describe('R-X10 poll limiter', () => {
  it('R-X10 LOGIN-DELAY counts from the last admitted login; a cancelled login (maildrop not opened) does not count', async () => {
    let t = Date.UTC(2026, 0, 10, 12);
    const l = limiter(new PollState(undefined), { loginDelay: 120, downloadBytesPerDay: 0 }, () => t);
    await (await l.admitLogin('alice')).confirm();
    t += 60_000;
    const e = await refused(l.admitLogin('alice'));
    assert.equal(e.responseCode, 'LOGIN-DELAY');
    assert.equal(e.message, 'Minimum time between logins is 120 seconds, try again in 60 seconds');
    t += 60_000;
    const ticket = await l.admitLogin('alice');
    ticket.cancel(); // e.g. -ERR [IN-USE]: the user did not get in
    t += 1000;
    await (await l.admitLogin('alice')).confirm();
    assert.equal((await refused(l.admitLogin('alice'))).code, 'LOGIN_DELAY');
  });

  it('R-X10 a clock set back does not lock a user out', async () => {
    let t = Date.UTC(2026, 0, 10, 12);
    const l = limiter(new PollState(undefined), { loginDelay: 3600, downloadBytesPerDay: 0 }, () => t);
    await (await l.admitLogin('alice')).confirm();
    t -= 2 * 3600_000; // the previous login now lies in the future
    await (await l.admitLogin('alice')).confirm();
    t += 10_000;
    assert.equal((await refused(l.admitLogin('alice'))).code, 'LOGIN_DELAY', 'counted from the new login');
  });

  it('R-X10 the download count is per UTC day, and a maildrop without a cap or login delay is neither counted nor written', async () => {
    let t = Date.UTC(2026, 0, 10, 23, 59, 59);
    const d = fresh();
    const state = new PollState(d);
    let cap = 10;
    const l = new PollLimiter({ policy: { get: async () => ({ loginDelay: 0, downloadBytesPerDay: cap }) }, state, now: () => t });
    /** One reply of chunks of these sizes, counted on the meter as the session does. */
    const send = async (meter: DownloadMeter | undefined, ...sizes: number[]): Promise<void> => {
      for (const s of sizes) meter?.add(s);
      await meter?.finish();
    };
    await send(await l.startDownload('alice'), 4, 4);
    await send(await l.startDownload('alice'), 4); // 8 < 10: starts, sent whole
    assert.equal((await refused(l.startDownload('alice'))).code, 'DOWNLOAD_LIMIT');
    assert.equal(utcDay(t), '2026-01-10');
    t += 1000; // 00:00:00 UTC
    await send(await l.startDownload('alice'), 3);
    assert.deepEqual(JSON.parse(await readFile(join(d, stateFileName('alice')), 'utf8')), { day: '2026-01-11', octets: 3 });
    cap = 0;
    assert.equal(await l.startDownload('bob'), undefined, 'no meter without a cap');
    await (await l.admitLogin('bob')).confirm(); // and no login delay either
    await state.flush();
    assert.deepEqual(await readdir(d), [stateFileName('alice')], 'nothing written for bob, who has no cap and no login delay');
  });
});

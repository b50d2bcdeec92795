/**
 * R-X21 R-X16: the merges of src/admin/across-workers.ts with workers' answers given by hand: the
 * history summed minute by minute (a worker that answered in the minute before lines up), the
 * delivery totals summed, the failed-login rings merged newest first with one question to the
 * workers per page of penalties, and the answers when a worker fails.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  acrossWorkersFailures, acrossWorkersSessions, sessionIdPrefix, sumDeliveries, sumHistories, workerAnswers, workerOfSession,
  type Answers, type AskWorkers,
} from '../../src/admin/across-workers.js';
import { HISTORY_MINUTES, type HistoryView } from '../../src/admin/history.js';
import { isPartial, type SessionView } from '../../src/admin/sources.js';
import { UnavailableError } from '../../src/errors.js';

const NOW = 1_800_000_000_000; // a whole minute
const ok = (value: unknown): PromiseSettledResult<unknown> => ({ status: 'fulfilled', value });
const failed = (reason: string): PromiseSettledResult<unknown> => ({ status: 'rejected', reason: new Error(reason) });

function view(startMinute: number, counts: Record<number, number>): HistoryView {
  const deliveries = Array.from({ length: HISTORY_MINUTES }, (_, i) => counts[i] ?? 0);
  const zero = new Array<number>(HISTORY_MINUTES).fill(0);
  return { start: startMinute * 60, step: 60, series: { logins: zero, failedLogins: zero, deliveries } };
}

describe('R-X21 R-X16 the merges of the admin API across workers', () => {
  it('R-X21 R-X16 histories are summed minute by minute; a view taken in the minute before lines up one slot earlier', () => {
    const current = NOW / 60_000;
    const first = current - HISTORY_MINUTES + 1;
    const sum = sumHistories([view(first, { [HISTORY_MINUTES - 1]: 2, 10: 1 }), view(first - 1, { [HISTORY_MINUTES - 1]: 5, 0: 7 })], NOW);
    assert.equal(sum.start, first * 60);
    assert.equal(sum.series.deliveries[HISTORY_MINUTES - 1], 2, 'the current minute: only the fresh view has it');
    assert.equal(sum.series.deliveries[HISTORY_MINUTES - 2], 5, 'the older view\'s last minute is the one before');
    assert.equal(sum.series.deliveries[10], 1);
    assert.equal(sum.series.deliveries.reduce((a, b) => a + b, 0), 8, 'the older view\'s first minute is out of the hour');
  });

  it('R-X21 R-X16 delivery totals are summed, refusals by reason, since the earliest worker', () => {
    const t = sumDeliveries([
      { since: '2027-01-15T10:00:05.000Z', delivered: 3, rejected: 1, failed: 0, bytes: 300, refused: { unknown_user: 1 } },
      { since: '2027-01-15T10:00:04.000Z', delivered: 2, rejected: 0, failed: 1, bytes: 200, refused: { unknown_user: 2, over_quota: 1 } },
    ], NOW);
    assert.deepEqual(t, { since: '2027-01-15T10:00:04.000Z', delivered: 5, rejected: 1, failed: 1, bytes: 500, refused: { unknown_user: 3, over_quota: 1 } });
  });

  it('R-X21 R-X16 failed logins are merged newest first; a page of penalties asks the workers once; the delay comes from the shared state', async () => {
    let asked = 0;
    const ask: AskWorkers = async () => {
      asked++;
      return new Map([
        [1, ok([{ at: NOW - 1000, address: '192.0.2.1', user: 'bob' }, { at: NOW - 3000, address: '192.0.2.2', user: undefined }])],
        [2, ok([{ at: NOW - 2000, address: '192.0.2.1', user: 'carol' }, { at: NOW - 90_000, address: '192.0.2.1', user: 'bob' }])],
      ]) as Answers;
    };
    const f = acrossWorkersFailures(ask, { delayMs: (kind, key) => (kind === 'address' && key === '192.0.2.1' ? 4000 : 0), windowMs: () => 60_000, now: () => NOW });
    const recent = await f.recent();
    assert.deepEqual(recent.map((r) => r.at), [NOW - 1000, NOW - 2000, NOW - 3000, NOW - 90_000]);
    assert.equal(isPartial(recent), false);
    asked = 0;
    const [a, b, none] = await Promise.all([f.penalty('address', '192.0.2.1'), f.penalty('user', 'bob'), f.penalty('user', 'nobody')]);
    assert.equal(asked, 1, 'one question for the page');
    assert.deepEqual(a, { failures: 2, delayMs: 4000 }, 'two failures within the window, on two workers');
    assert.deepEqual(b, { failures: 1, delayMs: 0 });
    assert.equal(none, undefined);
  });

  it('R-X21 R-X16 a worker that fails: the list is partial; every worker failing, or the holder of a session failing, is UnavailableError', async () => {
    const s1: SessionView = { id: `${sessionIdPrefix(1)}abc0`, user: null, mailbox: null, address: '192.0.2.1', since: new Date(NOW).toISOString(), state: 'authorization', bytesSent: 0, tls: false };
    let answers: Answers = new Map([[1, ok([s1])], [2, failed('worker 2 did not answer sessions within 2000 ms')]]);
    const sessions = acrossWorkersSessions(async (_kind, _body, only) => (only === undefined ? answers : new Map([...answers].filter(([id]) => id === only))), 2000);
    const list = await sessions.list();
    assert.deepEqual(list, [{ ...s1, worker: 1 }]);
    assert.equal(isPartial(list), true);
    await assert.rejects(sessions.end('2-abc0'), (e: unknown) => e instanceof UnavailableError && /worker 2 is unavailable: worker 2 did not answer/.test(e.message));
    assert.equal(await sessions.end('3-abc0'), false, 'no such worker: no such session');
    assert.equal(await sessions.end('abc0'), false);
    answers = new Map([[1, failed('down')], [2, failed('down')]]);
    await assert.rejects(sessions.list(), UnavailableError);
  });

  it('R-X16 the session ids of a worker name it; ids no worker makes name none', () => {
    assert.equal(workerOfSession(`${sessionIdPrefix(12)}a1b2c30`), 12);
    for (const id of ['a1b2c30', '0-a1b2c30', '-1-x', '1234567890-x']) assert.equal(workerOfSession(id), undefined, id);
  });

  it('R-X21 R-X16 a worker ends a session only for a string id before the deadline of the request; activity is null without a history', async () => {
    const ended: string[] = [];
    const answers = workerAnswers({ list: async () => [], end: async (id) => (ended.push(id), true) }, () => [], undefined, () => NOW);
    assert.equal(await answers['end-session']({ id: 7, until: NOW }), false);
    assert.equal(await answers['end-session']({ id: '1-x' }), false, 'no deadline');
    assert.equal(await answers['end-session']({ id: '1-late', until: NOW - 1 }), false, 'the primary gave up on it');
    assert.equal(await answers['end-session']({ id: '1-x', until: NOW }), true);
    assert.deepEqual(ended, ['1-x']);
    assert.equal(answers.activity(null), null);
  });
});

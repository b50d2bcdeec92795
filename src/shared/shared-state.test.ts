/**
 * R-X16 the cross-worker shared state without processes: two IpcSharedState "workers" wired to
 * one SharedStateHost and PrimaryChannel through in-memory ports (messages cloned, delivered on a
 * later tick, as IPC does). The processes themselves are tested in test/ops/workers.test.ts.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { SharedStateError } from '../errors.js';
import { IpcSharedState, type IpcPort } from './ipc-client.js';
import { PrimaryChannel, SharedStateHost, type WorkerEnd } from './ipc-host.js';
import { LocalSharedState } from './local-state.js';

function cluster(limits = { maxConnections: 0, maxConnectionsPerIp: 2, maxConnectionsPerUser: 1 }) {
  const state = new LocalSharedState({ limits, penalty: { baseMs: 100, maxMs: 1000, windowMs: 60_000 }, loginCache: { ttlMs: 60_000, maxEntries: 10 } });
  const host = new SharedStateHost(state);
  const channel = new PrimaryChannel();
  const make = (id: number, timeoutMs = 200): { end: WorkerEnd; client: IpcSharedState } => {
    let toWorker: ((m: unknown) => void) | undefined;
    const end: WorkerEnd = { id, send: (m) => setImmediate(() => toWorker?.(structuredClone(m))) };
    const port: IpcPort = {
      send: (m) => setImmediate(() => host.receive(end, structuredClone(m)) || channel.receive(structuredClone(m))),
      onMessage: (h) => (toWorker = h),
    };
    return { end, client: new IpcSharedState(port, state.key, { timeoutMs }) };
  };
  return { state, host, channel, a: make(1), b: make(2) };
}

it('R-X16 two workers count one per-address cap and one per-user cap in the primary', async () => {
  const { a, b } = cluster();
  assert.equal(await a.client.admit('192.0.2.1'), 'ok');
  assert.equal(await b.client.admit('192.0.2.1'), 'ok');
  assert.equal(await a.client.admit('192.0.2.1'), 'ip', 'the third from one address, whichever worker asks');
  assert.equal(await a.client.acquireUser('alice'), true);
  assert.equal(await b.client.acquireUser('alice'), false);
});

it('R-X16 a penalty and a cache entry made through one worker are seen through the other', async () => {
  const { a, b } = cluster();
  assert.equal(await a.client.loginFailed('192.0.2.1', 'alice', 'fp', 1000), 100);
  assert.equal(await b.client.penaltyNow('192.0.2.1', undefined, 1001), 100);
  a.client.rememberLogin('alice', { mac: 'x'.repeat(32), expires: 5000 });
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(await b.client.cachedLogin('alice', 2000), { mac: 'x'.repeat(32), expires: 5000 });
  assert.equal(await b.client.cachedLogin('alice', 6000), undefined, 'expired');
});

it('R-X16 a dead worker\'s connections, user slots and claims are all given back', async () => {
  const { state, host, a, b } = cluster();
  await a.client.admit('192.0.2.1');
  await a.client.admit('192.0.2.1');
  await a.client.acquireUser('alice');
  assert.equal(await a.client.claim('maildrop:alice'), true);
  assert.equal(await b.client.claim('maildrop:alice'), false);
  assert.deepEqual(host.releaseWorker(1), { connections: 2, users: 1, claims: 1 });
  assert.equal(state.connections, 0);
  assert.equal(await b.client.admit('192.0.2.1'), 'ok');
  assert.equal(await b.client.acquireUser('alice'), true);
  assert.equal(await b.client.claim('maildrop:alice'), true);
});

it('R-X16 a worker cannot give back what it does not hold', async () => {
  const { state, a, b } = cluster();
  await a.client.admit('192.0.2.1');
  b.client.release('192.0.2.1');
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(state.connections, 1);
});

it('R-X16 a primary that does not answer fails every question closed (SharedStateError), within the timeout', async () => {
  const { host, a } = cluster();
  host.stalled = true;
  const t0 = Date.now();
  await assert.rejects(a.client.admit('192.0.2.1'), SharedStateError);
  assert.ok(Date.now() - t0 >= 190);
  await assert.rejects(a.client.penaltyNow('192.0.2.1', 'alice', 0), SharedStateError);
  a.client.close();
  await assert.rejects(a.client.acquireUser('alice'), SharedStateError, 'after the channel closed');
});

it('R-X16 the primary\'s channel asks every worker and collects each answer', async () => {
  const { channel, a, b } = cluster();
  a.client.handle('sessions', () => [{ id: 's1' }]);
  b.client.handle('sessions', async () => [{ id: 's2' }, { id: 's3' }]);
  const answers = await channel.broadcast([a.end, b.end], 'sessions', null, 500);
  assert.deepEqual(answers.get(1), { status: 'fulfilled', value: [{ id: 's1' }] });
  assert.deepEqual(answers.get(2), { status: 'fulfilled', value: [{ id: 's2' }, { id: 's3' }] });
  const missing = await channel.broadcast([a.end], 'unknown-kind', null, 500);
  assert.equal(missing.get(1)!.status, 'rejected');
});

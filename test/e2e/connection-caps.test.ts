/**
 * R-X9 connection caps behind one interface (policy/connection-caps.ts ConnectionCaps), the seam
 * a count shared across workers or hosts will use (DESIGN.md "one interface for shared state"):
 * the listener admits and releases through it, a login takes and gives back its user slot through
 * it, and a count that cannot be reached fails closed (`-ERR [SYS/TEMP]`), never open.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { it } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';
import { LocalConnectionCaps, type Admission, type ConnectionCaps, type LimitSettings } from '../../src/policy/connection-caps.js';
import { startServer } from '../../src/server.js';
import { MemoryMailStore } from '../../src/storage/memory/memory-store.js';
import { makeCredentials } from '../../src/auth/credentials.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { DEFAULT_TEST_SETTINGS, MapDirectory, NO_FAILURE_DELAY, TEST_SCRYPT_COST, waitFor } from '../helpers/test-server.js';

/** Records every call and forwards it to the in-process caps, unless told to fail. */
class RecordingCaps implements ConnectionCaps {
  readonly calls: string[] = [];
  failAdmit = false;
  failUser = false;
  private readonly inner = new LocalConnectionCaps();
  update(settings: LimitSettings): void {
    this.calls.push(`update ${settings.maxConnectionsPerUser}`);
    this.inner.update(settings);
  }
  async admit(ip: string): Promise<Admission> {
    this.calls.push('admit');
    if (this.failAdmit) throw new Error('shared state unreachable');
    return this.inner.admit(ip);
  }
  release(ip: string): void {
    this.calls.push('release');
    this.inner.release(ip);
  }
  async acquireUser(user: string): Promise<boolean> {
    this.calls.push(`acquireUser ${user}`);
    if (this.failUser) throw new Error('shared state unreachable');
    return this.inner.acquireUser(user);
  }
  releaseUser(user: string): void {
    this.calls.push(`releaseUser ${user}`);
    this.inner.releaseUser(user);
  }
}

async function withCapsServer(caps: ConnectionCaps, fn: (port: number, logText: () => string) => Promise<void>): Promise<void> {
  const made = await makeCredentials('wonderland', { cost: TEST_SCRYPT_COST, needs: { scram: false, nt: false, cram: false, secret: false } });
  const directory = new MapDirectory(new Map([['alice', { name: 'alice', password: made.password, grants: [], credentials: made.credentials }]]));
  let text = '';
  const sink = new Writable({ write: (chunk: Buffer, _enc, cb) => ((text += chunk.toString()), cb()) });
  const store = new MemoryMailStore();
  const server = await startServer({
    listen: [{ host: '127.0.0.1', port: 0 }], settings: DEFAULT_TEST_SETTINGS, directory, store, logger: createLogger('debug', sink),
    scryptCost: TEST_SCRYPT_COST, failureDelay: NO_FAILURE_DELAY, connectionCaps: caps,
    limits: { maxConnections: 0, maxConnectionsPerIp: 0, maxConnectionsPerUser: 2 },
  });
  try {
    await fn(server.addresses()[0]!.port, () => text);
  } finally {
    await server.close();
    await store.close();
  }
}

it('R-X9 connection caps are counted through the ConnectionCaps given to the server: admit, user slot, both given back', async () => {
  const caps = new RecordingCaps();
  await withCapsServer(caps, async (port) => {
    const c = await Pop3Client.connect(port);
    assert.match(await c.login('alice', 'wonderland'), /^\+OK/);
    assert.match(await c.cmd('QUIT'), /^\+OK/);
    await c.closed();
    await waitFor(() => caps.calls.includes('release'));
  });
  assert.deepEqual(caps.calls, ['update 2', 'admit', 'acquireUser alice', 'releaseUser alice', 'release']);
});

it('R-X9 a connection count that cannot be reached refuses the connection with -ERR [SYS/TEMP] (fails closed)', async () => {
  const caps = new RecordingCaps();
  caps.failAdmit = true;
  await withCapsServer(caps, async (port, logText) => {
    const c = await Pop3Client.connect(port);
    assert.match(await c.greeting, /^-ERR \[SYS\/TEMP\]/);
    await c.closed();
    assert.match(logText(), /connection caps unavailable/);
  });
  assert.ok(!caps.calls.includes('release'), 'nothing was counted, nothing is given back');
});

it('R-X9 a user count that cannot be reached refuses the login with -ERR [SYS/TEMP]; the session stays usable', async () => {
  const caps = new RecordingCaps();
  caps.failUser = true;
  await withCapsServer(caps, async (port) => {
    const c = await Pop3Client.connect(port);
    assert.match(await c.login('alice', 'wonderland'), /^-ERR \[SYS\/TEMP\]/);
    assert.match(await c.cmd('NOOP'), /^-ERR/, 'still in AUTHORIZATION');
    assert.match(await c.cmd('QUIT'), /^\+OK/);
    await c.closed();
  });
  assert.ok(!caps.calls.includes('releaseUser alice'), 'no slot was taken, none is given back');
});

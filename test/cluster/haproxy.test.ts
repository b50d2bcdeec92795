/**
 * Two poplar nodes behind a real HAProxy (round robin, send-proxy-v2 for POP3), sharing one
 * Maildir tree and one users file: the deployment of docs/scaling.md on a shared file system.
 * Proves the load balancer plumbing every cluster test builds on: the PROXY v2 header is read
 * (a node with `pop3.proxy_networks` refuses a connection without one), sessions alternate
 * between nodes, and a message delivered by LMTP through HAProxy to one node is read over POP3
 * through the other.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needProgram } from '../helpers/external.js';
import { startHaproxy, type Haproxy } from '../helpers/haproxy.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { startPoplar, type PoplarProcess } from '../helpers/poplar-process.js';
import { lmtpSend } from '../helpers/python-clients.js';
import { waitFor } from '../helpers/wait.js';

describe('HAProxy in front of two nodes', { skip: needProgram('haproxy', 'haproxy') || needProgram('python3', 'python3') }, () => {
  let shared: string;
  let nodes: PoplarProcess[] = [];
  let lb: Haproxy;

  before(async () => {
    shared = await mkdtemp(join(tmpdir(), 'poplar-cluster-'));
    const common = [`storage.maildir_path=${join(shared, 'mail/%u')}`, `auth.users_file=${join(shared, 'users')}`,
      'pop3.proxy_networks=["127.0.0.1/32"]'];
    for (let i = 0; i < 2; i++) nodes.push(await startPoplar({ overrides: common, dataDir: i === 0 ? shared : undefined }));
    lb = await startHaproxy([
      { name: 'pop3', backends: nodes.map((n) => n.pop3Port) },
      { name: 'lmtp', backends: nodes.map((n) => n.lmtpPort), sendProxy: false },
    ]);
  });

  after(async () => {
    await lb?.stop();
    for (const n of nodes) await n.cleanup();
    await rm(shared, { recursive: true, force: true });
  });

  it('R-X13 R-X17 a node behind the proxy-networks rule refuses a connection that skips the PROXY header', async () => {
    const s = connect({ host: '127.0.0.1', port: nodes[0]!.pop3Port });
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.write('CAPA\r\n');
    await once(s, 'close');
    assert.doesNotMatch(got, /\+OK/, 'no greeting and no answer without the PROXY header');
  });

  it('R-X17 sessions through HAProxy reach both nodes, each reading the client address from PROXY v2', async () => {
    const before = nodes.map((n) => n.events('login').length);
    for (let i = 0; i < 4; i++) {
      const c = await Pop3Client.connect(lb.ports['pop3']!);
      assert.match(await c.greeting, /^\+OK/);
      assert.match(await c.login('alice', 'wonderland'), /^\+OK/);
      assert.match(await c.cmd('QUIT'), /^\+OK/);
    }
    // Each node's log lines reach the test through a pipe: a line may still be on its way after QUIT.
    const counts = (): number[] => nodes.map((n, i) => n.events('login').length - before[i]!);
    await waitFor(() => counts().reduce((a, b) => a + b, 0) >= 4, 5000, 'four login lines');
    // Round robin alternates, but HAProxy may start a new backend's rotation at either server.
    const [first, second] = counts();
    assert.equal(first! + second!, 4, 'every session reached a node');
    assert.ok(first! >= 1 && second! >= 1, `both nodes served sessions: ${first}/${second}`);
  });

  it('R-X17 a message delivered by LMTP through HAProxy is read through the other node', async () => {
    const r = await lmtpSend(lb.ports['lmtp']!, [{ from: 'a@example.com', to: ['alice@example.org'], message: Buffer.from('Subject: via lb\r\n\r\nhello cluster\r\n') }]);
    assert.deepEqual(r.deliveries[0]!.data.map((x) => x[0]), [250], JSON.stringify(r.deliveries));
    for (let i = 0; i < 2; i++) {
      const c = await Pop3Client.connect(lb.ports['pop3']!);
      assert.match(await c.login('alice', 'wonderland'), /^\+OK/);
      assert.match(await c.cmd('STAT'), /^\+OK 1 /, `session ${i + 1} sees the delivery`);
      assert.match(await c.cmd('QUIT'), /^\+OK/);
    }
  });
});

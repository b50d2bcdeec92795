/**
 * Three `poplar serve` nodes on one PostgreSQL database (mail and users in it) behind a real
 * HAProxy: POP3 with send-proxy-v2 (the nodes require the header: `pop3.proxy_networks`), LMTP
 * plain, round robin, health checks and redispatch (issue 15, R-X17; the deployment of
 * docs/scaling.md). Proves that a delivery through one node is read through the others, that
 * the same user on two nodes at once keeps the snapshot rules (R-S3: a message one session
 * deleted answers -ERR on the other; uids never reused, R-S12), and that SIGKILL of a node during
 * LMTP deliveries and open POP3 sessions loses no acknowledged message and deletes nothing that
 * was not marked and QUIT (R-K4: the killed node's sessions never reached UPDATE), while the
 * other nodes go on.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { poplar } from '../cli/run.js';
import { needProgram } from '../helpers/external.js';
import { startHaproxy, type Haproxy } from '../helpers/haproxy.js';
import { lmtpLoop, loopMessage, type Outcome } from '../helpers/lmtp-loop.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { startPoplar, type PoplarProcess } from '../helpers/poplar-process.js';
import { needPostgres, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { waitFor } from '../helpers/wait.js';

const USERS = ['alice', 'bob', 'carol', 'dora', 'erin', 'fay'] as const;
type User = (typeof USERS)[number];
const password = (u: User) => `${u}-secret`;

/** The message text as sent: dot-unstuffed RETR body without the terminator. */
function unstuff(raw: Buffer): Buffer {
  return Buffer.from(raw.subarray(0, raw.length - 3).toString('latin1').replace(/(^|\r\n)\./g, '$1'), 'latin1');
}

describe('R-X17 three nodes on one PostgreSQL behind HAProxy', {
  skip: needPostgres() || needProgram('haproxy', 'haproxy'),
}, () => {
  let pg: PostgresServer;
  let lb: Haproxy;
  const nodes: PoplarProcess[] = [];
  const stop = { now: false };
  let counter = 0;

  before(async () => {
    pg = await startPostgres();
    const url = await pg.createDatabase();
    const settings = ['storage.backend=postgres', 'auth.directory=postgres', `postgres.url=${url}`, 'auth.scrypt_cost=14',
      'pop3.proxy_networks=["127.0.0.1/32"]', 'postgres.pool_size=4'];
    const migrated = await poplar(['db', 'migrate', ...settings.flatMap((s) => ['-o', s])]);
    assert.equal(migrated.code, 0, migrated.stderr);
    for (let i = 0; i < 3; i++) nodes.push(await startPoplar({ users: {}, overrides: settings }));
    for (const u of USERS) assert.equal((await nodes[0]!.cli(['user', 'add', u, '--password-stdin'], `${password(u)}\n`)).code, 0);
    lb = await startHaproxy([
      { name: 'pop3', backends: nodes.map((n) => n.pop3Port), check: true },
      { name: 'lmtp', backends: nodes.map((n) => n.lmtpPort), sendProxy: false, check: true },
    ]);
  });
  after(async () => {
    stop.now = true;
    await lb?.stop();
    for (const n of nodes) await n.cleanup();
    await pg?.stop();
  });

  /** Delivers message `n` to `user` through `port` (a node's LMTP, or HAProxy's); its uid. */
  async function deliver(port: number, user: User, n: number): Promise<number> {
    const outcomes: Outcome[] = [];
    const once = { now: false };
    await lmtpLoop({ port, via: 'one', rcpt: `${user}@example.org`, next: () => ((once.now = true), n), stop: once, outcomes, tag: 'cluster' });
    assert.equal(outcomes[0]?.code, 250, outcomes[0]?.reply);
    return outcomes[0]!.uid!;
  }

  /** A POP3 session through HAProxy, and the node it landed on (from that node's login log). */
  async function session(user: User): Promise<{ c: Pop3Client; node: number }> {
    const before = nodes.map((n) => n.events('login').filter((e) => e['user'] === user).length);
    const c = await Pop3Client.connect(lb.ports['pop3']!);
    assert.match(await c.login(user, password(user)), /^\+OK/);
    let node = -1;
    await waitFor(() => {
      node = nodes.findIndex((n, i) => n.events('login').filter((e) => e['user'] === user).length > before[i]!);
      return node !== -1;
    }, 5000, 'the login logged by a node');
    return { c, node };
  }

  const uids = async (c: Pop3Client): Promise<number[]> => (await c.multi('UIDL')).lines.map((l) => Number(l.split(' ')[1]));

  it('R-X17 a message delivered through one node is read, byte-exact, in sessions on each of the three nodes', async () => {
    const uid = await deliver(nodes[0]!.lmtpPort, 'alice', ++counter);
    const sent = loopMessage(counter, 'cluster');
    const landed = new Set<number>();
    for (let i = 0; i < 3; i++) {
      const { c, node } = await session('alice');
      landed.add(node);
      assert.deepEqual(await uids(c), [uid]);
      const text = unstuff((await c.multi('RETR 1')).raw);
      assert.ok(text.subarray(text.length - sent.length).equals(sent), `byte-exact through node ${node + 1}`);
      assert.match(await c.cmd('QUIT'), /^\+OK/);
    }
    assert.deepEqual([...landed].sort(), [0, 1, 2], 'round robin: one session on each node');
  });

  it('R-X17 R-S3 R-S12 the same user on two nodes at once: a message one session deleted answers -ERR on the other; uids are not reused', async () => {
    const first = [];
    for (let i = 0; i < 3; i++) first.push(await deliver(lb.ports['lmtp']!, 'bob', ++counter));
    const a = await session('bob');
    const b = await session('bob');
    assert.notEqual(a.node, b.node, 'two nodes');
    assert.match(await a.c.cmd('DELE 1'), /^\+OK/);
    assert.match(await a.c.cmd('QUIT'), /^\+OK/);
    assert.match(await b.c.cmd('STAT'), /^\+OK 3 /, 'the snapshot taken at login stays');
    assert.match(await b.c.cmd('RETR 1'), /^-ERR/, 'removed by the other session');
    assert.match((await b.c.multi('RETR 2')).status, /^\+OK/);
    assert.match(await b.c.cmd('QUIT'), /^\+OK/);
    const next = await deliver(lb.ports['lmtp']!, 'bob', ++counter);
    assert.ok(next > Math.max(...first), `uid ${next} is new`);
    const c = await session('bob');
    assert.deepEqual(await uids(c.c), [first[1], first[2], next]);
    assert.match(await c.c.cmd('QUIT'), /^\+OK/);
  });

  it('R-X17 R-K4 SIGKILL of a node during LMTP deliveries and open POP3 sessions: no acknowledged message lost, nothing unmarked deleted, the others go on', async (t) => {
    // Four messages each for the POP3 users, then a session for each: one per node (round robin).
    const holders = ['dora', 'erin', 'fay'] as const;
    const had = new Map<User, number[]>();
    for (const u of holders) {
      const list: number[] = [];
      for (let i = 0; i < 4; i++) list.push(await deliver(lb.ports['lmtp']!, u, ++counter));
      had.set(u, list);
    }
    const open = new Map<User, { c: Pop3Client; node: number }>();
    for (const u of holders) open.set(u, await session(u));
    assert.deepEqual([...open.values()].map((s) => s.node).sort(), [0, 1, 2], 'one session on each node');
    for (const s of open.values()) {
      assert.match(await s.c.cmd('DELE 1'), /^\+OK/);
      assert.match(await s.c.cmd('DELE 2'), /^\+OK/);
    }

    const outcomes: Outcome[] = [];
    const loops = [0, 1, 2].map(() => lmtpLoop({ port: lb.ports['lmtp']!, via: 'lb', rcpt: 'carol@example.org', next: () => ++counter, stop, outcomes, tag: 'cluster' }));
    await waitFor(() => outcomes.filter((o) => o.code === 250).length >= 30, 20_000, 'thirty deliveries before the kill');
    const victim = open.get('dora')!.node;
    const tKill = Date.now();
    await nodes[victim]!.kill();
    await waitFor(() => outcomes.filter((o) => o.code === 250 && o.at > tKill + 500).length >= 30, 20_000, 'thirty deliveries after the kill');
    stop.now = true;
    await Promise.all(loops);

    // The sessions on the other nodes go on and QUIT; the killed node's session is gone with it.
    await open.get('dora')!.c.closed();
    for (const u of ['erin', 'fay'] as const) {
      const s = open.get(u)!;
      assert.match((await s.c.multi('RETR 3')).status, /^\+OK/, `${u}'s session on node ${s.node + 1} goes on`);
      assert.match(await s.c.cmd('QUIT'), /^\+OK/);
    }

    const failed = outcomes.filter((o) => o.code !== 250);
    for (const f of failed) assert.ok(f.code === 'closed' || (f.code >= 400 && f.code < 500), `message ${f.n}: ${f.reply}`);
    const acked = outcomes.filter((o) => o.code === 250);
    const carol = await session('carol');
    assert.notEqual(carol.node, victim);
    const present = new Set(await uids(carol.c));
    for (const m of acked) assert.ok(present.has(m.uid!), `acknowledged message ${m.n} (uid ${m.uid}) is present`);
    assert.ok(present.size <= acked.length + failed.length, 'nothing but what was sent');
    assert.match(await carol.c.cmd('QUIT'), /^\+OK/);
    const after = acked.filter((o) => o.at > tKill);
    t.diagnostic(`node ${victim + 1} killed at ${tKill - outcomes[0]!.at} ms into the run; ${acked.length - after.length} deliveries acknowledged ` +
      `before, ${after.length} after (first ${after[0]!.at - tKill} ms after the kill); ${failed.length} without a final reply ` +
      `(${failed.map((f) => f.reply).filter((r, i, all) => all.indexOf(r) === i).join('; ')}); ${present.size} in the maildrop, all ${acked.length} acknowledged among them`);

    for (const u of holders) {
      const s = await session(u);
      assert.notEqual(s.node, victim);
      const all = had.get(u)!;
      // dora marked 1 and 2 on the killed node and never sent QUIT: all four are there.
      assert.deepEqual(await uids(s.c), u === 'dora' ? all : all.slice(2), `${u}'s maildrop`);
      assert.match(await s.c.cmd('QUIT'), /^\+OK/);
    }
  });
});

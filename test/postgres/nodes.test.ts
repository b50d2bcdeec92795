/**
 * Real `poplar serve` processes on one PostgreSQL database (issue 15): what an operator runs with
 * `storage.backend = "postgres"`. Deliveries through one node are seen at the next login on
 * another, a body delivered to many recipients in one LMTP transaction is stored once and removed
 * with its last message (R-X18), exclusive mode holds across nodes and a dead node's claim lapses
 * after its lease (R-S3), and a node refuses a schema it does not know (R-X17).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectPostgres, type Sql } from '../../src/storage/postgres/client.js';
import { migrate } from '../../src/storage/postgres/migrate.js';
import { rowStarts } from '../../src/storage/postgres/pg-bodies.js';
import { poplar } from '../cli/run.js';
import { needProgram } from '../helpers/external.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { startPoplar, type PoplarProcess } from '../helpers/poplar-process.js';
import { needPostgres, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { lmtpSend } from '../helpers/python-clients.js';

const USERS = { alice: 'wonderland', bob: 'builder', carol: 'singer' };

describe('poplar nodes on PostgreSQL', { skip: needPostgres() || needProgram('python3', 'python3') }, () => {
  let pg: PostgresServer;
  const pools: Sql[] = [];
  const nodes: PoplarProcess[] = [];
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    for (const n of nodes) await n.cleanup();
    for (const sql of pools) await sql.end({ timeout: 1 });
    await pg?.stop();
  });

  async function database(): Promise<{ url: string; sql: Sql }> {
    const url = await pg.createDatabase();
    const sql = connectPostgres({ url, poolSize: 2 });
    pools.push(sql);
    await migrate(sql);
    return { url, sql };
  }

  async function node(url: string, extra: readonly string[] = []): Promise<PoplarProcess> {
    const n = await startPoplar({ users: USERS, overrides: ['storage.backend=postgres', `postgres.url=${url}`, ...extra] });
    nodes.push(n);
    return n;
  }

  async function session(n: PoplarProcess, user: keyof typeof USERS): Promise<Pop3Client> {
    const c = await Pop3Client.connect(n.pop3Port);
    const reply = await c.login(user, USERS[user]);
    assert.match(reply, /^\+OK/, `${user} on port ${n.pop3Port}: ${reply}`);
    return c;
  }

  it('R-X18 R-X17 one LMTP delivery to three recipients stores the body once; each reads it on another node; it goes with its last message', async () => {
    const { url, sql } = await database();
    const [a, b] = [await node(url), await node(url)];
    const body = `Subject: for all\r\n\r\n${'shared line of the one body\r\n'.repeat(20_000)}`;
    const sent = await lmtpSend(a.lmtpPort, [{ from: 'sender@example.org', to: ['alice@example.org', 'bob@example.org', 'carol@example.org'], message: Buffer.from(body) }]);
    assert.deepEqual(sent.deliveries[0]!.data.map((d) => d[0]), [250, 250, 250]);
    const count = async (): Promise<{ bodies: number; chunks: number; messages: number }> => {
      const [r] = await sql<{ bodies: number; chunks: number; messages: number }[]>`
        SELECT (SELECT count(*) FROM bodies)::int AS bodies, (SELECT count(*) FROM body_chunks)::int AS chunks,
               (SELECT count(*) FROM messages)::int AS messages`;
      return r!;
    };
    const stored = await count();
    assert.equal(stored.messages, 3);
    assert.equal(stored.bodies, 1, 'one body for the three messages');
    assert.equal(stored.chunks, rowStarts(Buffer.byteLength(body)).length);
    const [{ octets } = { octets: 0 }] = await sql<{ octets: number }[]>`SELECT sum(octets)::float8 AS octets FROM bodies`;
    assert.equal(octets, Buffer.byteLength(body), 'the body octets once, not three times');

    for (const [i, user] of (['alice', 'bob', 'carol'] as const).entries()) {
      const c = await session(b, user);
      const retr = await c.multi('RETR 1');
      assert.match(retr.status, /^\+OK/);
      const text = retr.raw.toString('latin1');
      assert.match(text, /^Return-Path: <sender@example.org>\r\nDelivered-To: /, 'the trace headers of this delivery come first');
      assert.ok(text.includes(`for <${user}@example.org>`), `${user}'s own trace header`);
      assert.ok(text.endsWith(`${body}.\r\n`), 'then the shared body, byte-exact');
      assert.match(await c.cmd('DELE 1'), /^\+OK/);
      assert.match(await c.cmd('QUIT'), /^\+OK/);
      const left = await count();
      assert.equal(left.messages, 2 - i);
      assert.equal(left.bodies, i < 2 ? 1 : 0, i < 2 ? 'kept while a message names it' : 'removed with its last message');
      assert.equal(left.chunks, i < 2 ? stored.chunks : 0);
    }
  });

  it('R-S3 R-X17 exclusive mode holds across nodes; a killed node\'s claim lapses after postgres.lease_seconds', async () => {
    const { url } = await database();
    const opts = ['pop3.lock_mode=exclusive', 'postgres.lease_seconds=5'];
    const [a, b] = [await node(url, opts), await node(url, opts)];
    const held = await session(a, 'alice');
    const other = await Pop3Client.connect(b.pop3Port);
    await other.cmd('USER alice');
    assert.match(await other.cmd(`PASS ${USERS.alice}`), /^-ERR \[IN-USE\]/);
    await held.cmd('QUIT');
    (await session(b, 'alice')).socket.destroy(); // released by QUIT: the other node gets in
    await new Promise((r) => setTimeout(r, 300)); // that session's end releases its claim

    await session(a, 'alice'); // held by node a, which now dies without releasing
    await a.kill();
    const started = Date.now();
    let reply = '';
    while (Date.now() - started < 15_000) {
      const c = await Pop3Client.connect(b.pop3Port);
      await c.cmd('USER alice');
      reply = await c.cmd(`PASS ${USERS.alice}`);
      c.socket.destroy();
      if (reply.startsWith('+OK')) break;
      assert.match(reply, /^-ERR \[IN-USE\]/);
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.match(reply, /^\+OK/, 'the dead node\'s claim lapsed');
    assert.ok(Date.now() - started <= 8_000, `lapsed after ${Date.now() - started} ms (lease 5 s)`);
  });

  it('R-X17 a delivery through one node is seen at the next login on the other; uids keep increasing across nodes', async () => {
    const { url } = await database();
    const [a, b] = [await node(url), await node(url)];
    const uids: string[] = [];
    for (const n of [a, b, a, b]) {
      const r = await lmtpSend(n.lmtpPort, [{ from: 's@example.org', to: ['alice@example.org'], message: Buffer.from('Subject: x\r\n\r\nx\r\n') }]);
      uids.push(/Saved as uid (\d+)/.exec(r.deliveries[0]!.data[0]![1])![1]!);
    }
    assert.deepEqual(uids, ['1', '2', '3', '4']);
    for (const n of [a, b]) {
      const c = await session(n, 'alice');
      const uidl = await c.multi('UIDL');
      assert.deepEqual(uidl.lines, ['1 1', '2 2', '3 3', '4 4']);
      await c.cmd('QUIT');
    }
  });

  it('R-X17 poplar serve refuses a database not migrated, or of a newer schema, in one line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'poplar-pgnode-'));
    try {
      const bare = await pg.createDatabase();
      const serve = (u: string) => poplar(['serve', '--data', dir, '-o', 'storage.backend=postgres', '-o', `postgres.url=${u}`,
        '-o', 'pop3.listen=127.0.0.1:0', '-o', 'server.first_run_user=']);
      const r1 = await serve(bare);
      assert.equal(r1.code, 1);
      assert.match(r1.stderr, /^poplar: cannot use the database: the database is not migrated: run "poplar db migrate"\n$/);
      const { url, sql } = await database();
      await sql`INSERT INTO schema_migrations (version, name) VALUES (998, 'newer')`;
      const r2 = await serve(url);
      assert.equal(r2.code, 1);
      assert.match(r2.stderr, /^poplar: cannot use the database: the database schema has version 998, which this poplar does not know [^\n]*\n$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

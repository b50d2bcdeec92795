/**
 * Failover (issue 15, R-X17): a PostgreSQL primary with a synchronous streaming standby
 * (`pg_basebackup -R`, `synchronous_standby_names` on the primary, so a COMMIT returns only once
 * the standby has the WAL), and two `poplar serve` nodes whose `postgres.url` names both hosts with
 * `target_session_attrs=read-write`, mail and users in the database. LMTP deliveries run in a loop
 * through both nodes; the primary is SIGKILLed mid-run and the standby promoted (`pg_ctl promote`).
 * Then, without restarting the nodes:
 *   - every delivery answered 250 is in the maildrop, read over POP3 through both nodes (a sample
 *     byte-exact): an acknowledged message is never lost;
 *   - every delivery not answered 250 got a 4xx (try again later), never a 5xx or a dropped
 *     connection;
 *   - a POP3 session open across the failover gets -ERR [SYS/TEMP] for a RETR and for a QUIT with a
 *     deletion while no primary answers, and its deletion is not applied;
 *   - new sessions and deliveries work on both nodes within seconds of the promotion, after an
 *     outage of 12 s: the nodes found the new primary by themselves.
 * The timeline (kill, promote, first success after) is printed with t.diagnostic.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connectPostgres } from '../../src/storage/postgres/client.js';
import { poplar } from '../cli/run.js';
import { needProgram } from '../helpers/external.js';
import { lmtpLoop, loopMessage, type Outcome } from '../helpers/lmtp-loop.js';
import { makeSynchronous, startStandby, type Standby } from '../helpers/pg-standby.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { startPoplar, type PoplarProcess } from '../helpers/poplar-process.js';
import { needPostgres, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { waitFor } from '../helpers/wait.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
/** From the kill to `pg_ctl promote`: about what a failover manager (Patroni: ttl 30 s) takes, shortened. */
const OUTAGE_MS = 12_000;
/** A node delivers again this soon after the promotion (postgres.js's own retry curve waited 10-20 s here). */
const RECONNECTED_MS = 4_000;

/** The message text as sent: dot-unstuffed RETR body without the terminator. */
function unstuff(raw: Buffer): Buffer {
  return Buffer.from(raw.subarray(0, raw.length - 3).toString('latin1').replace(/(^|\r\n)\./g, '$1'), 'latin1');
}

describe('R-X17 failover to a promoted synchronous standby', {
  skip: needPostgres() || needProgram('pg_basebackup', 'postgresql'),
}, () => {
  let primary: PostgresServer;
  let standby: Standby;
  let single: string;
  const nodes: PoplarProcess[] = [];
  const stop = { now: false };
  before(async () => {
    // Its own cluster: pg_basebackup copies it whole, and the test kills it.
    primary = await startPostgres({ own: true });
    single = await primary.createDatabase();
    standby = await startStandby(primary);
    await makeSynchronous(primary);
  });
  after(async () => {
    stop.now = true;
    for (const n of nodes) await n.cleanup();
    await standby?.stop();
    await primary?.stop();
  });
  const multiHost = (db: string, ports: readonly number[]) =>
    `postgres://poplar@${ports.map((p) => `127.0.0.1:${p}`).join(',')}${new URL(db).pathname}?target_session_attrs=read-write`;

  it('R-X17 a postgres.url naming the standby first with target_session_attrs=read-write connects to the primary (postgres.js took the hot standby)', async () => {
    const url = multiHost(single, [standby.port, primary.port]);
    const sql = connectPostgres({ url, poolSize: 1, connectTimeout: 5 });
    try {
      const [row] = await sql<{ port: number; standby: boolean }[]>`SELECT inet_server_port() AS port, pg_is_in_recovery() AS standby`;
      assert.deepEqual(row, { port: primary.port, standby: false });
      await sql`CREATE TABLE written (x int)`; // a write: refused on a standby
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  it('R-X17 SIGKILL of the primary during LMTP deliveries: every 250 survives the promotion, in-flight ones get 4xx, the nodes reconnect by themselves', async (t) => {
    const settings = ['storage.backend=postgres', 'auth.directory=postgres', `postgres.url=${single}`, 'auth.scrypt_cost=14'];
    const o = (s: readonly string[]) => s.flatMap((x) => ['-o', x]);
    const migrated = await poplar(['db', 'migrate', ...o(settings)]);
    assert.equal(migrated.code, 0, migrated.stderr);
    const url = multiHost(single, [primary.port, standby.port]);
    const nodeSettings = ['storage.backend=postgres', 'auth.directory=postgres', `postgres.url=${url}`,
      'postgres.connect_timeout=2', 'postgres.statement_timeout=5000', 'auth.scrypt_cost=14'];
    for (let i = 0; i < 2; i++) nodes.push(await startPoplar({ users: {}, overrides: nodeSettings }));
    const [a, b] = nodes as [PoplarProcess, PoplarProcess];

    assert.equal((await a.cli(['user', 'add', 'alice', '--password-stdin'], 'wonderland\n')).code, 0);
    const outcomes: Outcome[] = [];
    let counter = 0;
    const loops = [a, b].map((n, i) => lmtpLoop({
      port: n.lmtpPort, via: `node${i + 1}`, rcpt: 'alice@example.org', next: () => ++counter, stop, outcomes, tag: 'failover',
    }));
    const t0 = Date.now();
    await waitFor(() => outcomes.filter((x) => x.code === 250).length >= 10, 20_000, 'ten deliveries before the kill');
    // A session on node b, open across the failover, with message 1 in its snapshot.
    const held = await Pop3Client.connect(b.pop3Port);
    assert.match(await held.login('alice', 'wonderland'), /^\+OK/);
    await waitFor(() => outcomes.filter((x) => x.code === 250).length >= 30, 20_000, 'thirty deliveries before the kill');

    const tKill = Date.now();
    await primary.kill();
    const ackedBeforeKill = outcomes.filter((x) => x.code === 250 && x.at <= tKill).length;
    await sleep(1000); // no primary: both nodes keep answering, with 4xx

    const retrDown = await held.cmd('RETR 1');
    assert.match(retrDown, /^-ERR \[SYS\/TEMP\]/, 'RETR while no primary answers');
    assert.match(await held.cmd('DELE 1'), /^\+OK/);
    const quitDown = await held.cmd('QUIT');
    assert.match(quitDown, /^-ERR \[SYS\/TEMP\]/, 'the deletion cannot be applied: QUIT says so');
    held.close();

    await sleep(tKill + OUTAGE_MS - Date.now());
    const tPromote = Date.now();
    await standby.promote();
    const tPromoted = Date.now();
    const firstAfter = (via: string): Outcome | undefined => outcomes.find((x) => x.via === via && x.code === 250 && x.at > tPromoted);
    await waitFor(() => firstAfter('node1') !== undefined && firstAfter('node2') !== undefined, 30_000, 'a delivery through each node after the promotion');
    for (const via of ['node1', 'node2']) {
      const late = firstAfter(via)!.at - tPromoted;
      assert.ok(late <= RECONNECTED_MS, `${via} delivered again ${late} ms after the promotion (at most ${RECONNECTED_MS})`);
    }
    const settledAt = outcomes.length;
    await waitFor(() => outcomes.length >= settledAt + 10, 10_000, 'ten more deliveries');
    stop.now = true;
    await Promise.all(loops);

    // Every non-250 is a 4xx: nothing bounced, no connection dropped.
    const failed = outcomes.filter((x) => x.code !== 250);
    for (const f of failed) assert.ok(typeof f.code === 'number' && f.code >= 400 && f.code < 500, `message ${f.n} via ${f.via}: ${f.reply}`);
    const acked = outcomes.filter((x) => x.code === 250);
    assert.ok(failed.length > 0, 'some deliveries were in flight or arrived while no primary answered');

    // Read through both nodes, which were not restarted: every acknowledged uid is there.
    const listings: string[][] = [];
    for (const n of [a, b]) {
      const c = await Pop3Client.connect(n.pop3Port);
      assert.match(await c.login('alice', 'wonderland'), /^\+OK/, 'a new session after the promotion');
      const uidl = await c.multi('UIDL');
      assert.match(uidl.status, /^\+OK/);
      listings.push(uidl.lines);
      const byUid = new Map(uidl.lines.map((l) => { const [msg, id] = l.split(' '); return [Number(id), Number(msg)]; }));
      for (const m of acked) assert.ok(byUid.has(m.uid!), `acknowledged message ${m.n} (uid ${m.uid}, ${m.via}) is present`);
      // Byte-exact: the last acknowledged before the kill, the first after the promotion, and every seventh.
      const lastBefore = acked.filter((x) => x.at <= tKill).at(-1)!;
      const sample = [lastBefore, firstAfter('node1')!, firstAfter('node2')!, ...acked.filter((_, i) => i % 7 === 0)];
      for (const m of sample) {
        const r = await c.multi(`RETR ${byUid.get(m.uid!)}`);
        assert.match(r.status, /^\+OK/);
        const text = unstuff(r.raw);
        const sent = loopMessage(m.n, 'failover');
        assert.ok(text.subarray(text.length - sent.length).equals(sent), `message ${m.n} byte-exact`);
      }
      assert.match(await c.cmd('QUIT'), /^\+OK/);
    }
    assert.deepEqual(listings[0], listings[1], 'both nodes list the same maildrop');
    assert.ok(listings[0]!.some((l) => l.endsWith(' 1')), 'uid 1, marked by the session whose QUIT failed, is still there');

    const at = (ms: number) => `+${((ms - t0) / 1000).toFixed(2)} s`;
    const firstFail = failed[0];
    t.diagnostic(`failover transcript (t0 = deliveries start, 2 nodes, LMTP loop per node, synchronous standby):`);
    t.diagnostic(`${at(tKill)} SIGKILL primary (port ${primary.port}); ${ackedBeforeKill} deliveries acknowledged so far`);
    if (firstFail !== undefined) t.diagnostic(`${at(firstFail.at)} first non-250 (${firstFail.via}): ${firstFail.reply}`);
    t.diagnostic(`${at(tKill + 1000)} held POP3 session: RETR -> ${retrDown}; DELE 1 + QUIT -> ${quitDown}`);
    t.diagnostic(`${at(tPromote)} pg_ctl promote (standby port ${standby.port}); promoted ${at(tPromoted)}`);
    for (const via of ['node1', 'node2']) t.diagnostic(`${at(firstAfter(via)!.at)} first 250 after the promotion via ${via}: ${firstAfter(via)!.reply}`);
    t.diagnostic(`totals: ${acked.length} acknowledged (all present on both nodes), ${failed.length} answered 4xx, ` +
      `${listings[0]!.length} messages in the maildrop, 0 lost; nodes not restarted`);
  });
});

/**
 * R-S16 R-S17 R-X10 R-X16 R-X17 limits that hold across processes, proven with real `poplar serve`
 * processes: a quota under many concurrent LMTP deliveries spread over 2 workers (Maildir) and
 * over 2 nodes on one PostgreSQL database, and LOGIN-DELAY with two logins of one user at the
 * same instant on two workers.
 *
 * Regressions: the quota was checked by the delivery agent before the store's commit, one
 * delivery at a time per maildrop in each process only, so two workers (or nodes) both passed
 * the check and the maildrop went over, with a warning from each; LOGIN-DELAY was decided by each
 * worker from what it had read of the poll-state file, so two logins at one instant both got in.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connectPostgres } from '../../src/storage/postgres/client.js';
import { migrate } from '../../src/storage/postgres/migrate.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { startPoplar, type PoplarProcess } from '../helpers/poplar-process.js';
import { needPostgres, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { lmtpOnce } from '../helpers/lmtp-loop.js';
import { waitFor } from '../helpers/wait.js';
import { connectTo } from '../helpers/workers.js';

const QUOTA = 10;
const DELIVERIES = 40;
/** With quota.warn_percent = [50]: the warning after the 5th message is the quota's 6th. */
const QUOTA_OVERRIDES = [`quota.messages=${QUOTA}`, 'quota.warn_percent=[50]', 'quota.over_quota=reject'];

/** One LMTP transaction to alice on its own connection: the reply that decided it. */
const racer = (port: number, n: number): Promise<string> => lmtpOnce(port, `Subject: racer ${n}\r\n\r\nbody ${n}\r\n`);

/** Every delivery at once, round robin over `ports`; the final replies. */
async function race(ports: readonly number[]): Promise<string[]> {
  return Promise.all(Array.from({ length: DELIVERIES }, (_, i) => racer(ports[i % ports.length]!, i)));
}

/** Exactly the quota's worth kept (one warning among them), the rest refused, none over. */
async function checkQuota(replies: readonly string[], servers: readonly PoplarProcess[]): Promise<void> {
  const accepted = replies.filter((r) => r.startsWith('250')).length;
  const refused = replies.filter((r) => /^5\d\d /.test(r));
  // Logged after its delivery's line, asynchronously: it may reach the test after every reply did.
  await waitFor(() => servers.flatMap((p) => p.events('quota_warning')).length >= 1, 5000, 'the quota_warning line');
  const warnings = servers.flatMap((p) => p.events('quota_warning'));
  assert.equal(warnings.length, 1, `one warning for the one crossing: ${JSON.stringify(warnings)}`);
  assert.equal(accepted + warnings.length, QUOTA, `accepted ${accepted} + ${warnings.length} warning under a quota of ${QUOTA}: ${JSON.stringify(replies)}`);
  assert.equal(refused.length, DELIVERIES - accepted, `refused: ${JSON.stringify(replies)}`);
  for (const r of refused) assert.match(r, /^552 5\.2\.2 /);
  const c = await Pop3Client.connect(servers[0]!.pop3Port);
  assert.match(await c.login('alice', 'wonderland'), new RegExp(`^\\+OK alice has ${QUOTA} messages `), 'usage never over');
  assert.match(await c.cmd('QUIT'), /^\+OK/);
}

/** Each LMTP transaction's line (delivered or refused): the process (worker's id, or node) that handled it. */
function lmtpLines(servers: readonly PoplarProcess[]): string[] {
  const who: string[] = [];
  for (const [i, p] of servers.entries()) {
    for (const e of [...p.events('delivered'), ...p.events('rcpt_refused'), ...p.events('delivery_refused')]) {
      if (e['protocol'] === 'pop3') continue;
      who.push(`${i}:${String(e['worker'] ?? '')}`);
    }
  }
  return who;
}

/** The processes that handled LMTP transactions, once every transaction's line is in (the servers log asynchronously). */
async function lmtpHandlers(servers: readonly PoplarProcess[]): Promise<Set<string>> {
  await waitFor(() => lmtpLines(servers).length >= DELIVERIES, 5000, `the ${DELIVERIES} transactions' lines`);
  return new Set(lmtpLines(servers));
}

describe('R-S16 R-X16 quota across 2 workers (Maildir)', { timeout: 120_000 }, () => {
  it(`R-S16 R-S17 R-X16 ${DELIVERIES} concurrent LMTP deliveries over 2 workers under a quota of ${QUOTA} messages: exactly ${QUOTA} kept (one warning), the rest 552, never over`, async () => {
    const p = await startPoplar({ workers: 2, overrides: QUOTA_OVERRIDES });
    try {
      const replies = await race([p.lmtpPort]);
      assert.equal((await lmtpHandlers([p])).size, 2, 'both workers handled deliveries');
      await checkQuota(replies, [p]);
    } finally {
      await p.cleanup();
    }
  });
});

describe('R-S16 R-X17 quota across 2 nodes on one PostgreSQL database', { skip: needPostgres(), timeout: 120_000 }, () => {
  let pg: PostgresServer;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
  });

  it(`R-S16 R-S17 R-X17 ${DELIVERIES} concurrent LMTP deliveries over 2 nodes under a quota of ${QUOTA} messages: exactly ${QUOTA} kept (one warning), the rest 552, never over`, async () => {
    const url = await pg.createDatabase();
    const sql = connectPostgres({ url, poolSize: 1 });
    await migrate(sql);
    await sql.end({ timeout: 1 });
    const nodes: PoplarProcess[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        nodes.push(await startPoplar({ workers: 1, overrides: ['storage.backend=postgres', `postgres.url=${url}`, ...QUOTA_OVERRIDES] }));
      }
      const replies = await race(nodes.map((n) => n.lmtpPort));
      assert.equal((await lmtpHandlers(nodes)).size, 2, 'both nodes handled deliveries');
      await checkQuota(replies, nodes);
    } finally {
      for (const n of nodes) await n.cleanup();
    }
  });
});

describe('R-X10 R-X16 LOGIN-DELAY across 2 workers', { timeout: 120_000 }, () => {
  it('R-X10 R-X16 two logins of one user at the same instant on two workers: exactly one admitted, the other -ERR [LOGIN-DELAY]', async () => {
    const users = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`user${i}`, `secret${i}`]));
    const p = await startPoplar({ workers: 2, users, overrides: ['auth.apop=true', 'policy.login_delay=600'] });
    const open: Pop3Client[] = [];
    try {
      for (const [user, password] of Object.entries(users)) {
        const a = await connectTo(p, () => true);
        open.push(a.c);
        const b = await connectTo(p, (pid) => pid !== a.pid);
        open.push(b.c);
        assert.match(await a.c.cmd(`USER ${user}`), /^\+OK/);
        assert.match(await b.c.cmd(`USER ${user}`), /^\+OK/);
        const replies = await Promise.all([a.c.cmd(`PASS ${password}`), b.c.cmd(`PASS ${password}`)]);
        assert.equal(replies.filter((r) => r.startsWith('+OK')).length, 1, `${user} on workers ${a.pid} and ${b.pid}: ${JSON.stringify(replies)}`);
        assert.equal(replies.filter((r) => r.startsWith('-ERR [LOGIN-DELAY]')).length, 1, JSON.stringify(replies));
        for (const c of open.splice(0)) c.close();
      }
    } finally {
      for (const c of open) c.close();
      await p.cleanup();
    }
  });
});

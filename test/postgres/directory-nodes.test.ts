/**
 * R-X17 with real `poplar serve` processes: two nodes with `auth.directory = "postgres"` and
 * `storage.backend = "postgres"` on one database, managed by the ordinary commands. A user added
 * or changed through one node's CLI is seen at the next login on the other, LMTP on one node
 * delivers to a user of the database, and LOGIN-DELAY and the daily download cap set with
 * `poplar retention` / `poplar quota` hold for both nodes together.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { needProgram } from '../helpers/external.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { startPoplar, type PoplarProcess } from '../helpers/poplar-process.js';
import { needPostgres, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { lmtpSend } from '../helpers/python-clients.js';
import { poplar } from '../cli/run.js';

describe('R-X17 poplar nodes sharing users and policy in PostgreSQL', { skip: needPostgres() || needProgram('python3', 'python3') }, () => {
  let pg: PostgresServer;
  const nodes: PoplarProcess[] = [];
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    for (const n of nodes) await n.cleanup();
    await pg?.stop();
  });

  async function cluster(): Promise<[PoplarProcess, PoplarProcess]> {
    const url = await pg.createDatabase();
    const settings = ['storage.backend=postgres', 'auth.directory=postgres', `postgres.url=${url}`, 'auth.scrypt_cost=14'];
    const migrated = await poplar(['db', 'migrate', ...settings.flatMap((s) => ['-o', s])]);
    assert.equal(migrated.code, 0, migrated.stderr);
    const started = [await startPoplar({ users: {}, overrides: settings }), await startPoplar({ users: {}, overrides: settings })];
    nodes.push(...started);
    return started as [PoplarProcess, PoplarProcess];
  }

  const login = async (n: PoplarProcess, user: string, password: string): Promise<{ c: Pop3Client; reply: string }> => {
    const c = await Pop3Client.connect(n.pop3Port);
    return { c, reply: await c.login(user, password) };
  };

  it('R-X17 R-X8 a user added or changed through one node is seen at the next login on the other; LMTP delivers to them', async () => {
    const [a, b] = await cluster();
    assert.equal((await a.cli(['user', 'add', 'alice', '--password-stdin'], 'wonderland\n')).code, 0);
    const sent = await lmtpSend(b.lmtpPort, [{ from: 's@example.org', to: ['alice@example.org', 'ghost@example.org'], message: Buffer.from('Subject: hi\r\n\r\nhello\r\n') }]);
    assert.deepEqual(sent.deliveries[0]!.rcpt.map((r) => r[0]), [250, 550], 'alice is known to the other node, ghost to neither');
    const first = await login(b, 'alice', 'wonderland');
    assert.match(first.reply, /^\+OK alice has 1 message/);
    await first.c.cmd('QUIT');
    assert.equal((await b.cli(['user', 'passwd', 'alice', '--password-stdin'], 'looking-glass\n')).code, 0);
    const old = await login(a, 'alice', 'wonderland');
    assert.equal(old.reply, '-ERR [AUTH] Authentication failed');
    old.c.close();
    const now = await login(a, 'alice', 'looking-glass');
    assert.match(now.reply, /^\+OK alice has 1 message/);
    await now.c.cmd('QUIT');
  });

  it('R-X17 R-X10 LOGIN-DELAY and the download cap set with poplar retention / poplar quota hold for both nodes', async () => {
    const [a, b] = await cluster();
    for (const [name, pw] of [['alice', 'wonderland'], ['bob', 'builder']]) assert.equal((await a.cli(['user', 'add', name!, '--password-stdin'], `${pw}\n`)).code, 0);
    assert.equal((await b.cli(['retention', 'set', 'alice', '--login-delay', '600'])).code, 0);
    assert.equal((await b.cli(['quota', 'set', 'bob', '--download-per-day', '100'])).code, 0);
    const message = Buffer.from(`Subject: big\r\n\r\n${'x'.repeat(150)}\r\n`);
    const sent = await lmtpSend(a.lmtpPort, [{ from: 's@example.org', to: ['bob@example.org'], message }, { from: 's@example.org', to: ['bob@example.org'], message }]);
    assert.deepEqual(sent.deliveries.map((d) => d.data[0]![0]), [250, 250]);

    const onA = await login(a, 'alice', 'wonderland');
    assert.match(onA.reply, /^\+OK/);
    await onA.c.cmd('QUIT');
    const onB = await login(b, 'alice', 'wonderland');
    assert.match(onB.reply, /^-ERR \[LOGIN-DELAY\] /);
    onB.c.close();

    const bobA = await login(a, 'bob', 'builder');
    assert.match((await bobA.c.multi('RETR 1')).status, /^\+OK/);
    await bobA.c.cmd('QUIT');
    const bobB = await login(b, 'bob', 'builder');
    assert.equal(await bobB.c.cmd('RETR 2'), '-ERR [SYS/TEMP] Daily download limit reached, try again after 00:00 UTC');
    await bobB.c.cmd('QUIT');
  });
});

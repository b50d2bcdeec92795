/**
 * The RFC 1939 command set over a real socket (R-K1, R-K5, R-K6, R-K7, R-K8), with Exchange's
 * behaviour choices where they apply (R-S1, R-S4, R-S12, R-S19) and CAPA (R-X1).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Pop3Client } from '../helpers/pop3-client.js';
import { startTestServer, withServer, type TestServer } from '../helpers/test-server.js';

const M1 = 'From: a@example.org\r\nSubject: one\r\n\r\nHello\r\n.starts with a dot\r\n';
const M2 = 'From: b@example.org\nSubject: two\n\nbare LF body\nlast line without newline';
const M3 = 'Subject: three\r\rbare CR\r';

async function seeded(settings = {}): Promise<TestServer> {
  const t = await startTestServer({ settings });
  for (const m of [M1, M2, M3]) await t.store.deliver('alice', Buffer.from(m));
  return t;
}

describe('RFC 1939 commands', () => {
  let t: TestServer;
  before(async () => {
    t = await seeded({ lastCommand: true });
  });
  after(() => t.close());

  it('R-K1 a full session: USER, PASS, STAT, LIST, UIDL, RETR, TOP, DELE, NOOP, RSET, QUIT', async () => {
    const c = await Pop3Client.connect(t.port);
    assert.match(await c.greeting, /^\+OK /);
    assert.match(await c.cmd('USER alice'), /^\+OK/);
    assert.match(await c.cmd('PASS wonderland'), /^\+OK alice has 3 messages \(\d+ octets\)$/);
    const stat = await c.cmd('STAT');
    const sizes = [M1, M2, M3].map((m) => Buffer.byteLength(m.replace(/\r\n|\r|\n/g, '\n').replace(/\n/g, '\r\n')) + (/[\r\n]$/.test(m) ? 0 : 2));
    assert.equal(stat, `+OK 3 ${sizes.reduce((a, b) => a + b)}`);
    const list = await c.multi('LIST');
    assert.deepEqual(list.lines, sizes.map((s, i) => `${i + 1} ${s}`));
    const uidl = await c.multi('UIDL');
    assert.equal(uidl.lines.length, 3);
    const retr = await c.multi('RETR 1');
    assert.equal(retr.status, `+OK ${sizes[0]} octets`);
    assert.deepEqual(retr.lines, ['From: a@example.org', 'Subject: one', '', 'Hello', '..starts with a dot']);
    const top = await c.multi('TOP 2 0');
    assert.deepEqual(top.lines, ['From: b@example.org', 'Subject: two', '']);
    assert.equal(await c.cmd('DELE 2'), '+OK Message 2 deleted');
    assert.equal(await c.cmd('NOOP'), '+OK');
    assert.match(await c.cmd('RSET'), /^\+OK Maildrop has 3 messages/);
    assert.match(await c.cmd('QUIT'), /^\+OK .*signing off/);
    await c.closed();
  });

  it('R-S4 STAT and LIST sizes equal the octets RETR sends, and nothing follows them', async () => {
    const c = await Pop3Client.connect(t.port);
    await c.login('alice', 'wonderland');
    for (let n = 1; n <= 3; n++) {
      const size = Number((await c.cmd(`LIST ${n}`)).split(' ')[2]);
      const r = await c.multi(`RETR ${n}`);
      const unstuffed = r.raw.subarray(0, r.raw.length - 3).toString('latin1').replace(/(^|\r\n)\./g, '$1');
      assert.equal(Buffer.byteLength(unstuffed, 'latin1'), size, `message ${n}`);
    }
    assert.match(await c.cmd('STAT'), /^\+OK \d+ \d+$/);
    assert.match(await c.cmd('LIST 1'), /^\+OK 1 \d+$/);
    await c.cmd('QUIT');
  });

  it('R-S19 R-K8 bare LF, bare CR and a missing final newline are served as CRLF lines', async () => {
    const c = await Pop3Client.connect(t.port);
    await c.login('alice', 'wonderland');
    const r2 = await c.multi('RETR 2');
    assert.equal(r2.raw.toString('latin1'), 'From: b@example.org\r\nSubject: two\r\n\r\nbare LF body\r\nlast line without newline\r\n.\r\n');
    const r3 = await c.multi('RETR 3');
    assert.equal(r3.raw.toString('latin1'), 'Subject: three\r\n\r\nbare CR\r\n.\r\n');
    await c.cmd('QUIT');
  });

  it('R-K6 TOP n m sends headers, the blank line, then at most m body lines, dot-stuffed', async () => {
    const c = await Pop3Client.connect(t.port);
    await c.login('alice', 'wonderland');
    assert.deepEqual((await c.multi('TOP 1 2')).lines, ['From: a@example.org', 'Subject: one', '', 'Hello', '..starts with a dot']);
    assert.deepEqual((await c.multi('TOP 1 1')).lines, ['From: a@example.org', 'Subject: one', '', 'Hello']);
    assert.deepEqual((await c.multi('TOP 1 100')).lines.length, 5);
    assert.match(await c.cmd('TOP 9 1'), /^-ERR No such message/);
    await c.cmd('QUIT');
  });

  it('R-K5 a message marked deleted cannot be RETR, TOP, LIST or UIDL; RSET unmarks all', async () => {
    const c = await Pop3Client.connect(t.port);
    await c.login('alice', 'wonderland');
    assert.match(await c.cmd('DELE 1'), /^\+OK/);
    for (const cmd of ['RETR 1', 'TOP 1 0', 'LIST 1', 'UIDL 1', 'DELE 1']) assert.match(await c.cmd(cmd), /^-ERR Message is deleted/, cmd);
    assert.deepEqual((await c.multi('LIST')).lines.map((l) => l.split(' ')[0]), ['2', '3']);
    assert.deepEqual((await c.multi('UIDL')).lines.map((l) => l.split(' ')[0]), ['2', '3']);
    assert.match(await c.cmd('STAT'), /^\+OK 2 /);
    await c.cmd('RSET');
    assert.match(await c.cmd('STAT'), /^\+OK 3 /);
    assert.match(await c.cmd('LIST 1'), /^\+OK 1 /);
    await c.cmd('RSET');
    c.close(); // no QUIT: nothing is applied
  });

  it('R-K8 keywords are case-insensitive', async () => {
    const c = await Pop3Client.connect(t.port);
    assert.match(await c.cmd('user alice'), /^\+OK/);
    assert.match(await c.cmd('pAsS wonderland'), /^\+OK/);
    assert.match(await c.cmd('stat'), /^\+OK 3 /);
    assert.match(await c.cmd('LiSt 2'), /^\+OK 2 /);
    await c.cmd('quit');
  });

  it('R-S1 keyword and arguments may be separated by several SPACE or TAB characters', async () => {
    const c = await Pop3Client.connect(t.port);
    assert.match(await c.cmd('USER \t alice'), /^\+OK/);
    assert.match(await c.cmd('PASS\twonderland'), /^\+OK/);
    assert.match(await c.cmd('LIST  \t 2'), /^\+OK 2 /);
    assert.deepEqual((await c.multi('TOP\t1 \t0')).lines.length, 3);
    await c.cmd('QUIT');
  });

  it('R-S12 UIDL shows decimal, increasing uids, one per message', async () => {
    const c = await Pop3Client.connect(t.port);
    await c.login('alice', 'wonderland');
    const uids = (await c.multi('UIDL')).lines.map((l) => l.split(' ')[1]!);
    for (const u of uids) assert.match(u, /^[1-9][0-9]*$/);
    const nums = uids.map(Number);
    assert.deepEqual([...nums].sort((a, b) => a - b), nums);
    assert.equal(new Set(nums).size, nums.length);
    assert.equal(await c.cmd('UIDL 2'), `+OK 2 ${uids[1]}`);
    await c.cmd('QUIT');
  });

  it('R-K7 LAST reports the highest message number accessed and 0 after RSET', async () => {
    const c = await Pop3Client.connect(t.port);
    await c.login('alice', 'wonderland');
    assert.equal(await c.cmd('LAST'), '+OK 0');
    await c.multi('RETR 2');
    assert.equal(await c.cmd('LAST'), '+OK 2');
    await c.multi('TOP 3 0');
    assert.equal(await c.cmd('LAST'), '+OK 2', 'TOP does not count as access');
    await c.cmd('DELE 3');
    assert.equal(await c.cmd('LAST'), '+OK 3');
    await c.cmd('RSET');
    assert.equal(await c.cmd('LAST'), '+OK 0');
    c.close();
  });

  it('R-X1 CAPA lists TOP, USER, UIDL, RESP-CODES, AUTH-RESP-CODE, PIPELINING, IMPLEMENTATION; USER only before login', async () => {
    const c = await Pop3Client.connect(t.port);
    const before = await c.multi('CAPA');
    assert.match(before.status, /^\+OK/);
    for (const cap of ['TOP', 'USER', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING']) assert.ok(before.lines.includes(cap), cap);
    assert.ok(before.lines.some((l) => l.startsWith('IMPLEMENTATION ')));
    await c.login('alice', 'wonderland');
    const afterLogin = await c.multi('CAPA');
    assert.ok(!afterLogin.lines.includes('USER'));
    assert.ok(afterLogin.lines.includes('TOP') && afterLogin.lines.includes('PIPELINING'));
    await c.cmd('QUIT');
  });

  it('R-K1 commands in the wrong state are refused with -ERR and the session goes on', async () => {
    const c = await Pop3Client.connect(t.port);
    for (const cmd of ['STAT', 'LIST', 'RETR 1', 'DELE 1', 'NOOP', 'RSET', 'TOP 1 1', 'UIDL', 'PASS x']) assert.match(await c.cmd(cmd), /^-ERR /, cmd);
    await c.login('alice', 'wonderland');
    assert.match(await c.cmd('USER alice'), /^-ERR /);
    assert.match(await c.cmd('PASS wonderland'), /^-ERR /);
    assert.match(await c.cmd('APOP alice 0123'), /^-ERR /);
    assert.match(await c.cmd('STAT'), /^\+OK/);
    await c.cmd('QUIT');
  });

  it('R-K7 LAST is off by default and then answers like an unknown command', async () => {
    await withServer({}, async (t2) => {
      const c = await Pop3Client.connect(t2.port);
      await c.login('alice', 'wonderland');
      assert.equal(await c.cmd('LAST'), '-ERR Unknown command');
      await c.cmd('QUIT');
    });
  });

  it('R-S7 negative replies carry informative text', async () => {
    const c = await Pop3Client.connect(t.port);
    await c.login('alice', 'wonderland');
    assert.equal(await c.cmd('RETR 0'), '-ERR No such message');
    assert.equal(await c.cmd('RETR 4'), '-ERR No such message');
    assert.equal(await c.cmd('RETR x'), '-ERR Invalid number: x');
    assert.equal(await c.cmd('STAT 1'), '-ERR STAT takes no arguments');
    assert.equal(await c.cmd('FOO'), '-ERR Unknown command');
    await c.cmd('QUIT');
  });
});

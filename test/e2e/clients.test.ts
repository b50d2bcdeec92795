/**
 * Real clients against a real server on the Maildir store: python3's poplib (the whole command
 * set, as a script) and curl's POP3 support (fetch, LIST, UIDL, DELE). Bytes must round-trip.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const run = promisify(execFile);

const MESSAGES = [
  'From: a@example.org\r\nSubject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n',
  'From: b@example.org\nSubject: bare LF\n\nline one\nline two without newline',
  'From: c@example.org\r\nSubject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGrüße, 日本語\r\n',
];

/** The CRLF lines a client should reconstruct from a stored message (R-S19). */
function expectedLines(m: string): string[] {
  const lines = m.split(/\r\n|\r|\n/);
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

const POPLIB_SCRIPT = String.raw`
import json, poplib, sys
port = int(sys.argv[1])
out = {}
p = poplib.POP3('127.0.0.1', port, timeout=10)
out['welcome'] = p.getwelcome().decode()
out['capa'] = sorted(p.capa().keys())
p.user('alice')
out['pass'] = p.pass_('wonderland').decode()
out['stat'] = list(p.stat())
resp, listing, _ = p.list()
out['list'] = [l.decode() for l in listing]
resp, uids, _ = p.uidl()
out['uidl'] = [l.decode() for l in uids]
out['retr'] = []
for i in range(1, out['stat'][0] + 1):
    resp, lines, octets = p.retr(i)
    out['retr'].append({'resp': resp.decode(), 'lines': [l.decode('utf-8') for l in lines], 'octets': octets})
resp, lines, _ = p.top(1, 1)
out['top'] = [l.decode() for l in lines]
out['dele'] = p.dele(2).decode()
try:
    p.retr(2)
    out['retr_deleted'] = 'no error'
except poplib.error_proto as e:
    out['retr_deleted'] = str(e)
out['rset'] = p.rset().decode()
out['noop'] = p.noop().decode()
out['dele2'] = p.dele(2).decode()
out['quit'] = p.quit().decode()
p = poplib.POP3('127.0.0.1', port, timeout=10)
p.user('alice')
try:
    p.pass_('wrong')
    out['bad'] = 'accepted'
except poplib.error_proto as e:
    out['bad'] = str(e)
p.user('alice')
p.pass_('wonderland')
out['stat_after'] = list(p.stat())
p.quit()
print(json.dumps(out))
`;

describe('real clients', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ store: 'maildir' });
  });
  after(() => t.close());

  it('R-K1 R-S4 R-S19 python3 poplib speaks the whole command set and reads every byte', async () => {
    for (const m of MESSAGES) await t.store.deliver('alice', Buffer.from(m));
    const { stdout } = await run('python3', ['-c', POPLIB_SCRIPT, String(t.port)], { timeout: 30_000 });
    const out = JSON.parse(stdout) as Record<string, any>;
    assert.match(out.welcome, /^\+OK/);
    for (const cap of ['PIPELINING', 'RESP-CODES', 'TOP', 'UIDL', 'USER']) assert.ok(out.capa.includes(cap), cap);
    assert.match(out.pass, /^\+OK alice has 3 messages/);
    assert.equal(out.stat[0], 3);
    assert.equal(out.list.length, 3);
    assert.equal(out.uidl.length, 3);
    out.retr.forEach((r: { resp: string; lines: string[]; octets: number }, i: number) => {
      const want = expectedLines(MESSAGES[i]!);
      assert.deepEqual(r.lines, want, `message ${i + 1}`);
      const size = Number(out.list[i].split(' ')[1]);
      assert.equal(r.resp, `+OK ${size} octets`);
      // poplib counts each line with its CRLF, after removing the stuffed dots: the R-S4 size.
      assert.equal(r.octets, size, `octets of message ${i + 1}`);
      assert.equal(out.stat[1] >= size, true);
    });
    assert.deepEqual(out.top, ['From: a@example.org', 'Subject: dots', '', '.leading dot']);
    assert.match(out.dele, /^\+OK/);
    assert.match(out.retr_deleted, /^b'-ERR Message is deleted'$/);
    assert.match(out.rset, /^\+OK/);
    assert.match(out.quit, /^\+OK/);
    assert.equal(out.bad, "b'-ERR [AUTH] Authentication failed'");
    assert.equal(out.stat_after[0], 2, 'the message deleted before QUIT is gone, the others stay');
  });

  it('R-K1 curl fetches a message, lists, shows UIDLs and deletes', async () => {
    const url = `pop3://alice:wonderland@127.0.0.1:${t.port}`;
    const snap = await t.store.open('alice', { exclusive: false });
    const count = snap.messages.length;
    await snap.release();
    await t.store.deliver('alice', Buffer.from(MESSAGES[0]!));
    const n = count + 1;
    const fetched = await run('curl', ['-sS', '--max-time', '10', `${url}/${n}`]);
    assert.equal(fetched.stdout, MESSAGES[0]);
    const listed = await run('curl', ['-sS', '--max-time', '10', `${url}/`]);
    assert.equal(listed.stdout.trim().split('\r\n').length, n);
    const uidl = await run('curl', ['-sS', '--max-time', '10', '-X', 'UIDL', `${url}/`]);
    assert.match(uidl.stdout, new RegExp(`^${n} \\d+\\r$`, 'm'));
    await run('curl', ['-sS', '--max-time', '10', '-X', `DELE ${n}`, '-I', `${url}/`]);
    const after = await run('curl', ['-sS', '--max-time', '10', `${url}/`]);
    assert.equal(after.stdout.trim().split('\r\n').length, count);
    const missing = await run('curl', ['-sS', '--max-time', '10', `${url}/${n}`]).catch((e: { code: number }) => e);
    assert.notEqual((missing as { code?: number }).code ?? 0, 0, 'fetching a deleted message fails');
  });
});

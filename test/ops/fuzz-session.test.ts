/**
 * Property-based fuzzing of a live session (issue #5): random and hostile byte streams — real
 * commands in any state, bad arguments, NULs, bare CRs, huge lines, SASL openings, STLS —
 * sent in random chunks to a real server. Whatever arrives, the server answers with well-formed
 * lines, ends the session on QUIT (or closes it on its own, R-S10), and keeps serving others.
 * Bounded for CI (FUZZ_SESSION_RUNS, default 200); a long run is
 * `FUZZ_SESSION_RUNS=5000 node scripts/run-tests.mjs ops/fuzz-session` after a build.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import fc from 'fast-check';
import { Pop3Client } from '../helpers/pop3-client.js';
import { withServer } from '../helpers/test-server.js';

const RUNS = Number(process.env.FUZZ_SESSION_RUNS ?? 200);

const piece = fc.oneof(
  fc.constantFrom(
    'USER alice\r\n', 'PASS wonderland\r\n', 'PASS wrong\r\n', 'STAT\r\n', 'LIST\r\n', 'LIST 1\r\n', 'UIDL\r\n',
    'RETR 1\r\n', 'RETR 2\r\n', 'TOP 1 0\r\n', 'TOP 2 99999999999\r\n', 'DELE 1\r\n', 'RSET\r\n', 'NOOP\r\n', 'LAST\r\n',
    'CAPA\r\n', 'AUTH\r\n', 'AUTH PLAIN\r\n', 'AUTH PLAIN =\r\n', 'AUTH LOGIN\r\n', '*\r\n', 'AUTH CRAM-MD5\r\n', 'UTF8\r\n',
    'APOP alice 0123456789abcdef0123456789abcdef\r\n', 'RETR -1\r\n', 'RETR 99999999999999999999\r\n', '\r\n', '\n', '\r',
    '\x00', '\xff\xfe', '.\r\n', 'USER ' + 'x'.repeat(700) + '\r\n', 'A'.repeat(3000),
  ),
  fc.string({ maxLength: 40 }),
  fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('latin1')),
);

/** Sends `stream` cut at `cuts`, then a SASL cancel and QUIT; resolves with everything received. */
async function session(port: number, stream: Buffer, cuts: number[]): Promise<Buffer> {
  const s = connect({ port, host: '127.0.0.1' });
  const got: Buffer[] = [];
  s.on('data', (d: Buffer) => got.push(d));
  s.on('error', () => undefined);
  await once(s, 'connect');
  let last = 0;
  for (const p of [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b)) {
    s.write(stream.subarray(last, p));
    last = p;
    await new Promise((r) => setImmediate(r));
  }
  s.write(stream.subarray(last));
  s.write('\r\n*\r\nQUIT\r\n');
  const closed = once(s, 'close');
  const timer = setTimeout(() => s.destroy(new Error('no close within 10 s')), 10_000);
  await closed;
  clearTimeout(timer);
  return Buffer.concat(got);
}

it('a live session survives any byte stream: well-formed replies, a clean end, the server still serving', { timeout: 600_000 }, async () => {
  await withServer({ settings: { lastCommand: true } }, async (t) => {
    await t.store.deliver('alice', Buffer.from('Subject: one\r\n\r\n.dot\r\nbody\r\n'));
    await t.store.deliver('alice', Buffer.from('Subject: two\n\nbare LF'));
    await fc.assert(
      fc.asyncProperty(fc.array(piece, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 8 }), async (pieces, cuts) => {
        const out = await session(t.port, Buffer.from(pieces.join(''), 'latin1'), cuts);
        const text = out.toString('latin1');
        assert.ok(text.startsWith('+OK'), 'greeting first');
        assert.ok(text.endsWith('\r\n'), 'the last thing sent is a whole line');
        for (const line of text.split('\r\n').slice(0, -1)) assert.ok(!line.includes('\n') && !line.includes('\r'), 'CRLF lines only');
        const status = text.split('\r\n').filter((l) => l.startsWith('+OK') || l.startsWith('-ERR'));
        for (const l of status) assert.ok(Buffer.byteLength(l, 'latin1') + 2 <= 512, 'R-S6 status lines fit 512 octets');
      }),
      { numRuns: RUNS },
    );
    const c = await Pop3Client.connect(t.port);
    assert.match(await c.login('alice', 'wonderland'), /^\+OK alice has [0-2] messages?/, 'still serving');
    await c.cmd('QUIT');
  });
});

/**
 * The retr bench's verification must fail a run on any wrong byte: RetrCheck (the streaming check
 * of a RETR reply against the message's expected wire form) is fed correct replies in every
 * chunking, and corrupted ones: a changed byte, a missing or extra stuffed dot, a wrong or
 * missing terminator, a -ERR, a LIST size that disagrees. Then the same through Pop3Client over
 * a loopback socket (its reused receive buffer), against a scripted fake server.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { Expected, makeMessage, stuff, toCrlf, unstuff, type WireForm } from '../../bench/messages.js';
import { Pop3Client } from '../../bench/pop3.js';
import { RetrCheck } from '../../bench/retr-check.js';

const SIZE = 20_000;
const expected = new Expected(7, () => SIZE);
// Ids cover the three line-ending modes (CRLF, LF, mixed).
const IDS = ['t-0', 't-1', 't-2', 't-3', 't-4', 't-5'];
const lookup = (id: string): WireForm | undefined => (IDS.includes(id) ? expected.wire(id) : undefined);
const STATUS = Buffer.from('+OK 20000 octets\r\n');

function reply(id: string): Buffer {
  return Buffer.concat([STATUS, expected.wire(id).wire]);
}

/** Feeds `bytes` in chunks of the given sizes (cycled); returns the check, or throws its error. */
function feed(bytes: Buffer, sizes: readonly number[], octets?: number, id = 't-0'): RetrCheck {
  const check = new RetrCheck(lookup);
  check.reset('RETR 1', octets ?? expected.wire(id).octets);
  let off = 0;
  for (let k = 0; off < bytes.length && !check.done; k++) {
    const chunk = Buffer.from(bytes.subarray(off, off + sizes[k % sizes.length]!)); // a copy, as the receive buffer is reused
    const used = check.feed(chunk);
    off += used;
    if (used < chunk.length) break;
  }
  return check;
}

/** `bytes`, as the reply to a RETR of `id` (LIST size `octets`), fails with `pattern` in any chunking. */
const rejects = (bytes: Buffer, pattern: RegExp, id = 't-0', octets?: number): void => {
  for (const sizes of [[65536], [1], [7, 300, 4096]]) {
    assert.throws(() => {
      const c = feed(bytes, sizes, octets, id);
      assert.ok(c.done, 'incomplete reply accepted as complete');
    }, pattern);
  }
};

/** `w` with `count` bytes at `at` replaced by `insert`. */
const splice = (w: Buffer, at: number, count: number, insert = ''): Buffer =>
  Buffer.concat([w.subarray(0, at), Buffer.from(insert, 'latin1'), w.subarray(at + count)]);

describe('bench retr verification (RetrCheck)', () => {
  it('the wire form is the CRLF message dot-stuffed and terminated, and the messages exercise stuffing', () => {
    let stuffed = 0;
    for (const id of IDS) {
      const crlf = toCrlf(makeMessage(7, id, SIZE));
      const w = expected.wire(id);
      assert.equal(w.octets, crlf.length);
      assert.ok(w.wire.subarray(-5).equals(Buffer.from('\r\n.\r\n')));
      assert.ok(unstuff(w.wire.subarray(0, -3)).equals(crlf));
      // Every line of the wire form that starts with a dot starts with two (the terminator aside).
      const lines = w.wire.subarray(0, -3).toString('latin1').split('\r\n');
      for (const l of lines) if (l.startsWith('.')) assert.ok(l.startsWith('..'), `unstuffed line ${JSON.stringify(l)}`);
      stuffed += lines.filter((l) => l.startsWith('..')).length;
      assert.ok(stuff(Buffer.from('.a\r\nb\r\n.\r\n')).equals(Buffer.from('..a\r\nb\r\n..\r\n.\r\n')));
    }
    assert.ok(stuffed > 20, `only ${stuffed} stuffed lines`);
  });

  it('accepts a correct reply however it is chunked, and stops at its end', () => {
    for (const id of IDS) {
      const r = reply(id);
      for (const sizes of [[1 << 20], [1], [2, 3, 5, 7], [17, 4093], [STATUS.length + 100, 65536]]) {
        const check = new RetrCheck(lookup);
        check.reset('RETR 1', expected.wire(id).octets);
        const next = Buffer.from('+OK next reply\r\n');
        const all = Buffer.concat([r, next]);
        let off = 0;
        for (let k = 0; !check.done; k++) {
          assert.ok(off < all.length, 'ran out of bytes');
          const chunk = all.subarray(off, off + sizes[k % sizes.length]!);
          off += check.feed(chunk);
        }
        assert.equal(off, r.length, 'consumed bytes past the reply');
        assert.equal(check.expected?.id, id);
      }
    }
  });

  it('rejects a changed byte anywhere: header, body, last line, terminator', () => {
    const w = expected.wire('t-0').wire;
    for (const at of [0, 5, 120, 2047, 2048, 9000, w.length - 6, w.length - 3, w.length - 2, w.length - 1]) {
      const bad = Buffer.from(w);
      bad[at] = bad[at] === 0x41 ? 0x42 : 0x41;
      // A change inside the id header names another or no message; elsewhere the bytes differ.
      rejects(Buffer.concat([STATUS, bad]), /differs from the message as seeded|no X-Bench-Id|unknown message/);
    }
  });

  it('rejects a missing stuffed dot, an extra one, and a dot line left unstuffed', () => {
    const w = expected.wire('t-1').wire;
    const doubled = w.indexOf('\r\n..', 200);
    assert.ok(doubled > 0);
    rejects(Buffer.concat([STATUS, splice(w, doubled + 2, 1)]), /differs/, 't-1');
    const plain = w.indexOf('\r\na', 200);
    rejects(Buffer.concat([STATUS, splice(w, plain + 2, 0, '.')]), /differs/, 't-1');
    const only = w.indexOf('\r\n..\r\n', 200);
    assert.ok(only > 0);
    rejects(Buffer.concat([STATUS, splice(w, only + 2, 1)]), /differs/, 't-1');
  });

  it('rejects a wrong, early or missing terminator', () => {
    const w = expected.wire('t-2').wire;
    rejects(Buffer.concat([STATUS, w.subarray(0, -3), Buffer.from('.\n')]), /differs/, 't-2');
    rejects(Buffer.concat([STATUS, w.subarray(0, w.lastIndexOf('\r\n', w.length - 6)), Buffer.from('\r\n.\r\n')]), /differs/, 't-2'); // last line lost
    rejects(Buffer.concat([STATUS, w.subarray(0, 9000), Buffer.from('\r\n.\r\n')]), /differs/, 't-2'); // truncated
    assert.ok(!feed(Buffer.concat([STATUS, w.subarray(0, -3)]), [4096], undefined, 't-2').done, 'a reply without terminator is complete');
  });

  it('rejects -ERR, a LIST size that disagrees, an unknown message and a reply without id', () => {
    rejects(Buffer.from('-ERR no such message\r\n'), /server said: -ERR no such message/);
    rejects(reply('t-0'), new RegExp(`LIST said ${expected.wire('t-0').octets - 1}$`), 't-0', expected.wire('t-0').octets - 1);
    const w = expected.wire('t-0').wire;
    const at = w.indexOf('X-Bench-Id: t-0') + 'X-Bench-Id: t-'.length;
    rejects(Buffer.concat([STATUS, splice(w, at, 1, '9')]), /unknown message t-9/);
    rejects(Buffer.concat([STATUS, Buffer.from('Subject: x\r\n\r\nbody\r\n.\r\n')]), /no X-Bench-Id/);
    rejects(Buffer.concat([STATUS, Buffer.from('.\r\n')]), /no X-Bench-Id/);
  });

  it('through Pop3Client on a socket: a correct reply passes, a corrupted one fails the RETR', async () => {
    const w = expected.wire('t-3').wire;
    const bad = splice(w, w.indexOf('\r\n..', 100) + 2, 1); // one stuffed dot missing
    const server = createServer((s: Socket) => {
      s.write('+OK ready\r\n');
      let retrs = 0;
      s.on('data', (d) => {
        for (const line of d.toString('latin1').split('\r\n').filter((l) => l !== '')) {
          if (line.startsWith('RETR')) {
            const body = retrs++ === 0 ? w : bad;
            // In pieces, so the check spans several reads.
            s.write(Buffer.concat([Buffer.from(`+OK ${body.length} octets\r\n`), body.subarray(0, 3000)]));
            setTimeout(() => s.write(body.subarray(3000)), 5);
          } else s.write('+OK\r\n');
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const p = await Pop3Client.open({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, timeoutMs: 5000 });
      const check = new RetrCheck(lookup);
      check.reset('RETR 1', expected.wire('t-3').octets);
      await p.retrChecked(1, check);
      assert.equal(check.expected?.id, 't-3');
      assert.equal(await p.command('NOOP'), ''); // the stream is in step after the checked reply
      check.reset('RETR 2', expected.wire('t-3').octets);
      await assert.rejects(p.retrChecked(2, check), /differs from the message as seeded/);
      p.destroy();
    } finally {
      server.close();
    }
  });
});

/**
 * R-X12 client workarounds in the one RETR/TOP transform (dot-stuffing.ts): `outlook-no-nuls` and
 * `oe-ns-eoh`, and lacksEndOfHeaders, which tells the session which messages oe-ns-eoh lengthens.
 * Every case is fed whole and in chunks of 1, 2, 3, 4 and 7 octets (DESIGN.md habit 1).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { lacksEndOfHeaders, stuffBody, type ClientWorkaround } from './dot-stuffing.js';
import { crlfSize } from './crlf.js';

const CHUNKS = [1, 2, 3, 4, 7, Number.MAX_SAFE_INTEGER];

function cut(message: Buffer, chunk: number): Buffer[] {
  const parts: Buffer[] = [];
  for (let i = 0; i < message.length; i += chunk) parts.push(message.subarray(i, i + chunk));
  return parts;
}

async function* from(parts: readonly Buffer[]): AsyncGenerator<Buffer> {
  yield* parts;
}

/** The wire bytes for `message` in every chunking; asserts they are all the same. */
async function serve(message: string | Buffer, workarounds: readonly ClientWorkaround[], topLines?: number): Promise<Buffer> {
  const bytes = typeof message === 'string' ? Buffer.from(message, 'latin1') : message;
  let first: Buffer | undefined;
  for (const chunk of CHUNKS) {
    const out: Buffer[] = [];
    for await (const b of stuffBody(from(cut(bytes, chunk)), { topLines, workarounds })) out.push(b);
    const got = Buffer.concat(out);
    if (first === undefined) first = got;
    else assert.deepEqual(got, first, `chunks of ${chunk}`);
  }
  return first!;
}

async function lacks(message: string): Promise<boolean> {
  const bytes = Buffer.from(message, 'latin1');
  const results = new Set<boolean>();
  for (const chunk of CHUNKS) results.add(await lacksEndOfHeaders(from(cut(bytes, chunk))));
  assert.equal(results.size, 1, 'same answer in every chunking');
  return [...results][0]!;
}

/** The octets of a RETR reply before dot-stuffing and without the terminator (R-S4's size). */
function unstuffedSize(wire: Buffer): number {
  const text = wire.subarray(0, wire.length - 3).toString('latin1');
  return Buffer.byteLength(text.replace(/(^|\r\n)\./g, '$1'), 'latin1');
}

describe('R-X12 client workarounds in stuffBody', () => {
  it('R-X12 outlook-no-nuls sends each NUL as 0x80, same octet count, source untouched', async () => {
    const stored = Buffer.from('Subject: n\x00l\r\n\r\n\x00body\x00\x00\n.\x00dot\r\n', 'latin1');
    const copy = Buffer.from(stored);
    const wire = await serve(stored, ['outlook-no-nuls']);
    assert.equal(wire.toString('latin1'), 'Subject: n\x80l\r\n\r\n\x80body\x80\x80\r\n..\x80dot\r\n.\r\n');
    assert.equal(wire.indexOf(0), -1, 'no NUL is sent');
    assert.equal(unstuffedSize(wire), crlfSize(stored), 'R-S4: the size does not change');
    assert.deepEqual(stored, copy, 'the stored bytes are not modified');
    const plain = await serve(stored, []);
    assert.equal(plain.indexOf(0) >= 0, true, 'without the workaround NULs are sent as stored');
  });

  it('R-X12 oe-ns-eoh adds the missing end-of-headers line to RETR, and only where missing', async () => {
    const cases: [string, string][] = [
      ['Subject: only headers\r\nFrom: a@b\r\n', 'Subject: only headers\r\nFrom: a@b\r\n\r\n.\r\n'],
      ['Subject: no final newline', 'Subject: no final newline\r\n\r\n.\r\n'],
      ['Subject: bare\nX: lf\n', 'Subject: bare\r\nX: lf\r\n\r\n.\r\n'],
      ['Subject: cr\rX: y\r', 'Subject: cr\r\nX: y\r\n\r\n.\r\n'],
      ['', '\r\n.\r\n'],
      ['.dot header\r\n', '..dot header\r\n\r\n.\r\n'],
    ];
    for (const [stored, expected] of cases) {
      const wire = await serve(stored, ['oe-ns-eoh']);
      assert.equal(wire.toString('latin1'), expected, JSON.stringify(stored));
      assert.equal(unstuffedSize(wire), crlfSize(Buffer.from(stored, 'latin1')) + 2, `2 octets more: ${JSON.stringify(stored)}`);
    }
    for (const stored of ['Subject: a\r\n\r\nbody\r\n', 'Subject: a\n\n', '\r\nbody only', 'A: 1\r\r\nB', 'Subject: a\r\rbody']) {
      const wire = await serve(stored, ['oe-ns-eoh']);
      assert.deepEqual(wire, await serve(stored, []), `unchanged: ${JSON.stringify(stored)}`);
    }
  });

  it('R-X12 oe-ns-eoh applies to TOP; TOP of a complete message is unchanged', async () => {
    const headersOnly = 'Subject: x\r\nFrom: a@b\r\n';
    assert.equal((await serve(headersOnly, ['oe-ns-eoh'], 0)).toString('latin1'), 'Subject: x\r\nFrom: a@b\r\n\r\n.\r\n');
    assert.equal((await serve(headersOnly, ['oe-ns-eoh'], 5)).toString('latin1'), 'Subject: x\r\nFrom: a@b\r\n\r\n.\r\n');
    assert.equal((await serve(headersOnly, [], 0)).toString('latin1'), 'Subject: x\r\nFrom: a@b\r\n.\r\n');
    const whole = 'Subject: x\r\n\r\none\r\ntwo\r\n';
    assert.equal((await serve(whole, ['oe-ns-eoh'], 1)).toString('latin1'), 'Subject: x\r\n\r\none\r\n.\r\n');
  });

  it('R-X12 both workarounds together', async () => {
    const wire = await serve('Subject: \x00\r\n', ['outlook-no-nuls', 'oe-ns-eoh']);
    assert.equal(wire.toString('latin1'), 'Subject: \x80\r\n\r\n.\r\n');
  });

  it('R-X12 lacksEndOfHeaders finds the first empty line by the CRLF rule', async () => {
    for (const m of ['Subject: a\r\n', 'Subject: a', 'A: 1\nB: 2\n', 'A\rB\r', '', 'x']) {
      assert.equal(await lacks(m), true, JSON.stringify(m));
    }
    for (const m of ['A: 1\r\n\r\n', 'A: 1\n\nbody', '\r\n', '\n', '\r', 'A\r\rB', 'A\r\n\rB', 'A\n\r\nB']) {
      assert.equal(await lacks(m), false, JSON.stringify(m));
    }
  });

  it('R-X12 R-S4 for any message, oe-ns-eoh sends crlfSize + 2 octets exactly when lacksEndOfHeaders', async () => {
    const bytes = fc
      .array(fc.oneof(fc.constantFrom('\r\n', '\n', '\r', '.', '\x00', 'Subject: x', ':'), fc.string({ maxLength: 6 })), { maxLength: 40 })
      .map((p) => Buffer.from(p.join(''), 'latin1'));
    await fc.assert(
      fc.asyncProperty(bytes, fc.integer({ min: 1, max: 9 }), async (message, chunk) => {
        const out: Buffer[] = [];
        for await (const b of stuffBody(from(cut(message, chunk)), { workarounds: ['oe-ns-eoh', 'outlook-no-nuls'] })) out.push(b);
        const wire = Buffer.concat(out);
        const extra = (await lacksEndOfHeaders(from(cut(message, chunk)))) ? 2 : 0;
        assert.equal(unstuffedSize(wire), crlfSize(message) + extra);
        assert.equal(wire.indexOf(0), -1);
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 300) },
    );
  });
});

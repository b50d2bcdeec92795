/**
 * The one line-end rule (line-rule.ts) and every fast path of it, byte for byte: random stored
 * messages heavy in CR, LF, "." and NUL go through each implementation whole and cut at random
 * chunk boundaries, and must give exactly what the reference gives — the RETR transforms (JS and
 * WebAssembly), the RETR and TOP encoders with and without the R-X12 workarounds, the sizes STAT,
 * LIST and `,W=` report (R-S4), and the end of the header block oe-ns-eoh looks for (import's
 * header reader: ../migrate/headers.test.ts). `FUZZ_RUNS` sets the runs per property (default 300).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonical, canonicalSize, hasEndOfHeaders, storedLines, wireBody } from './line-rule.js';
import { jsTransform, transformChunk, wasmTransform } from './body-transform.js';
import { cutAt, viaTransform } from '../../test/helpers/chunks.js';
import { CrlfSizer, crlfSize } from './crlf.js';
import { bodyEncoder, CLIENT_WORKAROUNDS, lacksEndOfHeaders, type ClientWorkaround } from './dot-stuffing.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

/** Stored bytes: mostly CR, LF, ".", NUL and their pairs, some text, now and then a long line. */
const storedArb = fc
  .array(
    fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom('\r', '\n', '.', '\0', '\r\n', '\n.', '\r.', '\r\n.', '..', 'a', ' ') },
      { weight: 2, arbitrary: fc.string({ maxLength: 20 }) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('latin1')) },
      { weight: 1, arbitrary: fc.nat({ max: 80 }).map((n) => 'x'.repeat(n)) },
    ),
    { maxLength: 150 },
  )
  .map((parts) => Buffer.from(parts.join(''), 'latin1'));

const cutsArb = fc.array(fc.nat(), { maxLength: 12 });
const workaroundsArb = fc.subarray([...CLIENT_WORKAROUNDS]);

/** The encoder RETR and TOP use, fed synchronously as session/output.ts feeds it. */
function viaEncoder(chunks: readonly Buffer[], topLines?: number, workarounds?: readonly ClientWorkaround[]): Buffer {
  const encoder = bodyEncoder({ topLines, workarounds });
  const out: Buffer[] = [];
  for (const c of chunks) {
    const o = encoder.chunk(c);
    if (o !== undefined) out.push(Buffer.from(o));
    if (encoder.done) break;
  }
  out.push(encoder.end());
  return Buffer.concat(out);
}

async function* from(chunks: readonly Buffer[]): AsyncGenerator<Buffer> {
  yield* chunks;
}

function sizeInChunks(chunks: readonly Buffer[]): number {
  const sizer = new CrlfSizer();
  for (const c of chunks) sizer.push(c);
  return sizer.total();
}

/** What a client reads back from a RETR body: the lines, unstuffed, with their CRLFs. */
function unstuff(wire: Buffer): Buffer {
  const text = wire.subarray(0, wire.length - 3).toString('latin1');
  return Buffer.from(text.replace(/(^|\r\n)\./g, '$1'), 'latin1');
}

describe('the line-end rule, written once (line-rule.ts)', () => {
  it('R-S19 R-K8 the reference: CRLF kept, bare LF and bare CR become CRLF, a last line gets one, dot lines stuffed', () => {
    const cases: [string, string][] = [
      ['', ''],
      ['a', 'a\r\n'],
      ['a\r\n', 'a\r\n'],
      ['a\n', 'a\r\n'],
      ['a\r', 'a\r\n'],
      ['a\r\r\n\n', 'a\r\n\r\n\r\n'],
      ['\n\r', '\r\n\r\n'],
      ['.a\r.\n..', '..a\r\n..\r\n...\r\n'],
      ['a\0b\r\n.', 'a\0b\r\n..\r\n'],
    ];
    for (const [stored, wire] of cases) {
      const bytes = Buffer.from(stored, 'latin1');
      assert.equal(wireBody(bytes).toString('latin1'), wire + '.\r\n', JSON.stringify(stored));
      assert.equal(canonical(bytes).toString('latin1'), unstuff(Buffer.from(wire + '.\r\n', 'latin1')).toString('latin1'));
    }
  });

  it('R-S19 the reference agrees with the rule written as a regular expression', () => {
    fc.assert(
      fc.property(storedArb, (stored) => {
        const text = stored.toString('latin1');
        const lines = text === '' ? [] : text.replace(/\r\n|\r|\n/g, '\n').split('\n');
        if (lines.at(-1) === '') lines.pop(); // the message ended with a line end
        assert.deepEqual([...storedLines(stored)].map((l) => l.toString('latin1')), lines);
      }),
      { numRuns: RUNS },
    );
  });

  it('R-S4 R-S19 CrlfSizer and crlfSize (STAT, LIST, ",W=") equal the reference size, whole and in any chunking', () => {
    fc.assert(
      fc.property(storedArb, cutsArb, (stored, cuts) => {
        const want = canonicalSize(stored);
        assert.equal(crlfSize(stored), want, 'crlfSize');
        assert.equal(sizeInChunks(cutAt(stored, cuts)), want, 'CrlfSizer in chunks');
        assert.equal(sizeInChunks([...stored].map((b) => Buffer.of(b))), want, 'CrlfSizer octet by octet');
        assert.equal(unstuff(wireBody(stored)).length, want, 'the size of what RETR sends, before stuffing');
      }),
      { numRuns: RUNS },
    );
  });

  it('R-S19 R-K8 the RETR transforms (WebAssembly, JS) equal the reference, whole and in any chunking', () => {
    fc.assert(
      fc.property(storedArb, cutsArb, (stored, cuts) => {
        const want = wireBody(stored);
        for (const chunks of [[stored], cutAt(stored, cuts)]) {
          assert.deepEqual(viaTransform(chunks, wasmTransform), want, 'wasmTransform');
          assert.deepEqual(viaTransform(chunks, jsTransform), want, 'jsTransform');
          assert.deepEqual(viaTransform(chunks, transformChunk), want, 'transformChunk');
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('R-S19 R-K8 the WebAssembly transform equals the reference across its 256 KiB windows', () => {
    fc.assert(
      fc.property(fc.array(storedArb, { minLength: 1, maxLength: 8 }), cutsArb, (parts, cuts) => {
        let stored = Buffer.concat(parts);
        while (stored.length < 600 * 1024) stored = Buffer.concat([stored, stored, Buffer.from('\r')]);
        const want = wireBody(stored);
        assert.deepEqual(viaTransform([stored], wasmTransform), want, 'whole');
        assert.deepEqual(viaTransform(cutAt(stored, cuts.map((c) => c * 4099)), wasmTransform), want, 'in chunks');
      }),
      { numRuns: Math.max(5, RUNS / 30) },
    );
  });

  it('R-S19 R-K8 R-K6 R-X12 the RETR and TOP encoders, with any workarounds, equal the reference in any chunking', () => {
    fc.assert(
      fc.property(storedArb, cutsArb, fc.option(fc.nat({ max: 8 }), { nil: undefined }), workaroundsArb, (stored, cuts, topLines, workarounds) => {
        const want = wireBody(stored, { topLines, workarounds });
        assert.deepEqual(viaEncoder([stored], topLines, workarounds), want, 'whole');
        assert.deepEqual(viaEncoder(cutAt(stored, cuts), topLines, workarounds), want, 'in chunks');
      }),
      { numRuns: RUNS },
    );
  });

  it('R-X12 R-S4 lacksEndOfHeaders finds the empty line the reference finds; oe-ns-eoh adds exactly 2 octets then', async () => {
    await fc.assert(
      fc.asyncProperty(storedArb, cutsArb, async (stored, cuts) => {
        const lacks = !hasEndOfHeaders(stored);
        assert.equal(await lacksEndOfHeaders(from([stored])), lacks, 'whole');
        assert.equal(await lacksEndOfHeaders(from(cutAt(stored, cuts))), lacks, 'in chunks');
        // session/maildrop.ts reports crlfSize + 2 for such a message to a client with oe-ns-eoh.
        assert.equal(unstuff(wireBody(stored, { workarounds: ['oe-ns-eoh'] })).length, crlfSize(stored) + (lacks ? 2 : 0));
      }),
      { numRuns: RUNS },
    );
  });
});

/**
 * The RETR transform (body-transform.ts) against the reference (line-rule.ts): whole message in,
 * wire form out, CRLF lines and RFC 1939 §3 byte stuffing. Inputs are CR/LF/"."-heavy, long
 * enough to cross the 16-octet SIMD steps, and cut at random chunk boundaries (between CR and LF,
 * between LF and ".", at a final CR, with and without a final line end).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Readable } from 'node:stream';
import { AFTER_CR, jsTransform, LINE_START, MID_LINE, transformChunk, usingWasm, wasmTransform } from './body-transform.js';
import { cutAt, viaTransform, type ChunkTransform } from '../../test/helpers/chunks.js';
import { crlfSize } from './crlf.js';
import { wireBody } from './line-rule.js';
import { stuffBody } from './dot-stuffing.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

/** The reference (line-rule.ts): line ends to CRLF (CRLF, bare LF, bare CR), a final CRLF added, dots doubled. */
function reference(message: Buffer): string {
  return wireBody(message).toString('latin1');
}

/** Pieces that put CR, LF and "." everywhere, and runs long enough for the SIMD path. */
const messageArb = fc
  .array(
    fc.oneof(
      { weight: 5, arbitrary: fc.constantFrom('\r\n', '\n', '\r', '.', '..', '\r\n.', '\n.', '\r.', 'a', ' ', '\x00', '\xff') },
      { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
      { weight: 1, arbitrary: fc.nat({ max: 70 }).map((n) => 'x'.repeat(n)) },
    ),
    { maxLength: 120 },
  )
  .map((parts) => Buffer.from(parts.join(''), 'latin1'));

/** Long messages: runs of one kind of line (so the module's segments go sparse for CRLF text and
 * dense for bare LF or CR text, and switch between them), with the pieces above in between. */
const longMessageArb = fc
  .array(
    fc.oneof(
      fc.tuple(fc.constantFrom('\r\n', '\n', '\r', '\r\n.', '\n.'), fc.nat({ max: 60 }), fc.nat({ max: 300 })).map(
        ([eol, len, lines]) => ('y'.repeat(len) + eol).repeat(lines),
      ),
      fc.constantFrom('\r.', '\r\r.', '.\r.\n', '\r.\r.', '\r\n.\r.'),
      fc.string({ maxLength: 40 }),
    ),
    { maxLength: 12 },
  )
  .map((parts) => Buffer.from(parts.join(''), 'latin1'));

/** Runs `t` over the chunks as stuffBody does, and ends the message. */
const run = (chunks: readonly Buffer[], t: ChunkTransform): string => viaTransform(chunks, t).toString('latin1');

async function serve(chunks: readonly Buffer[]): Promise<string> {
  const out: Buffer[] = [];
  for await (const b of stuffBody(Readable.from(chunks))) out.push(b);
  return Buffer.concat(out).toString('latin1');
}

describe('RETR transform', () => {
  it('uses WebAssembly here', () => {
    assert.equal(usingWasm, true);
  });

  it('R-S19 R-K8 R-S4 WebAssembly and JS transforms equal the reference in any chunking, at the reported size', async () => {
    await fc.assert(
      fc.asyncProperty(messageArb, fc.array(fc.nat(), { maxLength: 12 }), async (message, cuts) => {
        const want = reference(message);
        const chunks = cutAt(message, cuts);
        assert.equal(run(chunks, wasmTransform), want, 'wasm');
        assert.equal(run(chunks, jsTransform), want, 'js');
        assert.equal(run(chunks, transformChunk), want, 'transformChunk');
        assert.equal(await serve(chunks), want, 'stuffBody');
        assert.equal(await serve([message]), want, 'stuffBody, whole');
        // R-S4: the reported size is the wire size without the stuffed dots and the terminator.
        const unstuffed = want.slice(0, -3).replace(/(^|\r\n)\./g, '$1');
        assert.equal(crlfSize(message), unstuffed.length);
      }),
      { numRuns: RUNS },
    );
  });

  it('R-S19 R-K8 long messages (sparse and dense segments, a "." after a bare CR) in any chunking', () => {
    fc.assert(
      fc.property(longMessageArb, fc.array(fc.nat(), { maxLength: 6 }), (message, cuts) => {
        const want = reference(message);
        const chunks = cutAt(message, cuts);
        assert.equal(run(chunks, wasmTransform), want, 'wasm');
        assert.equal(run(chunks, jsTransform), want, 'js');
      }),
      { numRuns: Math.max(20, RUNS / 10) },
    );
  });

  it('R-S19 R-K8 a "." after a bare CR at every offset of a step, after sparse and dense text', () => {
    for (const eol of ['\r\n', '\n', '\r']) {
      const before = ('x'.repeat(30) + eol).repeat(300); // more than a segment of one kind
      for (let at = 0; at < 70; at++) {
        const message = Buffer.from(before + 'y'.repeat(at) + '\r.' + 'z'.repeat(at % 7) + '\r.\n.\r..' + before, 'latin1');
        assert.equal(run([message], wasmTransform), reference(message), `${JSON.stringify(eol)} ${at}`);
      }
    }
  });

  it('R-S19 R-K8 the first octet of a chunk in every state, and an LF after a CR ending the previous chunk', () => {
    for (const [state, text, want] of [
      [MID_LINE, '.a\n', '.a\r\n'],
      [LINE_START, '.a\n', '..a\r\n'],
      [AFTER_CR, '.a\n', '..a\r\n'],
      [AFTER_CR, '\n.a', '..a'],
      [AFTER_CR, '\nabc', 'abc'],
      [LINE_START, '\n', '\r\n'],
      [MID_LINE, '\r', '\r\n'],
    ] as const) {
      for (const t of [wasmTransform, jsTransform]) {
        if (t === jsTransform && state === AFTER_CR && text.startsWith('\n')) continue; // not jsTransform's input
        const pad = 'p'.repeat(40); // and the same where the SIMD steps see it
        const cases: [string, string][] = [[text, want], [text + pad, want + pad]];
        for (const [input, out] of cases) {
          const r = t(Buffer.from(input, 'latin1'), state);
          assert.equal(r.out.toString('latin1'), out, `${t.name} ${state} ${JSON.stringify(input)}`);
        }
      }
    }
  });

  it('R-S19 R-K8 chunk boundaries between CR and LF, LF and ".", and at a final CR', async () => {
    const cases = ['a\r|\nb', 'a\n|.b', 'a\r|.b', 'a\r\n|.b', 'a\r|', 'a\r|\r|\n|.', '|.|.|\n|.', 'x'.repeat(17) + '\r|\n' + '.'.repeat(20), 'no final newline|'];
    for (const c of cases) {
      const chunks = c.split('|').map((p) => Buffer.from(p, 'latin1'));
      const want = reference(Buffer.from(c.replaceAll('|', ''), 'latin1'));
      assert.equal(run(chunks, wasmTransform), want, JSON.stringify(c));
      assert.equal(await serve(chunks), want, JSON.stringify(c));
    }
  });

  it('passes on a chunk that needs no change as it is, without a copy', () => {
    const clean = Buffer.from('Subject: x\r\n\r\n' + 'line of text\r\n'.repeat(1000), 'latin1');
    assert.equal(wasmTransform(clean, LINE_START).out, clean);
    assert.equal(jsTransform(clean, LINE_START).out, clean);
    const long = Buffer.from('line of text, a bit longer\r\n'.repeat(30000), 'latin1'); // several windows
    assert.equal(wasmTransform(long, LINE_START).out, long);
    const dotted = Buffer.from('a\r\n.b\r\n', 'latin1');
    assert.notEqual(wasmTransform(dotted, LINE_START).out, dotted);
  });

  it('R-S19 large chunks across the WebAssembly window give the same octets', () => {
    const r = fc.sample(messageArb, { numRuns: 4000, seed: 7 });
    const big = Buffer.concat([...r, ...r, ...r, ...r, ...r, ...r]);
    const want = reference(big);
    assert.ok(big.length > 600 * 1024, `only ${big.length} octets`);
    assert.equal(run([big], wasmTransform), want);
    assert.equal(run(cutAt(big, [262143, 262145, 524288]), wasmTransform), want);
    // A window ending with a CR, then an LF, a "." or a "." line after a bare LF.
    for (const next of ['\n', '.', 'x', '\n.', '\r.']) {
      const text = Buffer.from('a'.repeat(262143) + '\r' + next + 'b\n'.repeat(100), 'latin1');
      assert.equal(run([text], wasmTransform), reference(text), JSON.stringify(next));
    }
  });

  it('R-S19 a chunk of several windows at its worst case: a window ending with a bare CR, then only "." CR pairs', () => {
    // The first window grows (a bare LF) and ends with a CR; the second turns its first "." into
    // LF "." "." (3 octets from 1) and every other octet into 2: more than twice its length.
    const first = Buffer.from('\n' + 'a'.repeat(262142) + '\r', 'latin1');
    const text = Buffer.concat([first, Buffer.from('.\r'.repeat(131072), 'latin1')]);
    assert.equal(run([text], wasmTransform), reference(text));
  });
});

/**
 * Property-based fuzzing of the pure protocol layer (fast-check). Any byte stream, cut anywhere,
 * must frame and parse to the same results without throwing; any stored message must be served
 * as CRLF lines, correctly dot-stuffed, with exactly the size R-S4 reports. The CI run is
 * bounded (FUZZ_RUNS, default 300 per property); a long run is
 * `FUZZ_RUNS=100000 node scripts/run-tests.mjs protocol/fuzz` after a build.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LineReader, type LineEvent } from './line-reader.js';
import { parseCommand } from './command.js';
import { stuffBody } from './dot-stuffing.js';
import { crlfSize, CrlfSizer } from './crlf.js';
import { cutAt } from '../../test/helpers/chunks.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

/** Bytes biased towards what matters to a POP3 parser: CR, LF, dots, spaces, keywords. */
const pop3Bytes = fc
  .array(
    fc.oneof(
      fc.constantFrom('\r\n', '\n', '\r', '.', ' ', '\t', '\x00', 'USER ', 'PASS ', 'RETR 1', 'TOP 1 2', 'LIST', 'QUIT', '\xff', '..'),
      fc.string({ maxLength: 8 }),
    ),
    { maxLength: 200 },
  )
  .map((parts) => Buffer.from(parts.join(''), 'latin1'));

function frameAll(stream: Buffer, cuts: number[], max: number): string[] {
  const reader = new LineReader(max);
  const out: string[] = [];
  let last = 0;
  const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
  for (const p of [...points, stream.length]) {
    reader.push(stream.subarray(last, p));
    last = p;
    for (let e: LineEvent | undefined = reader.next(); e !== undefined; e = reader.next()) {
      if (e.kind === 'too-long') out.push('too-long');
      else {
        const r = parseCommand(e.line);
        out.push(r.ok ? JSON.stringify(r.command) : `${r.error.code}:${r.error.message}`);
      }
    }
  }
  return out;
}

async function serve(message: Buffer, cuts: number[], topLines?: number): Promise<Buffer> {
  const chunks = cutAt(message, cuts);
  async function* source(): AsyncGenerator<Buffer> {
    yield* chunks;
  }
  const out: Buffer[] = [];
  for await (const b of stuffBody(source(), { topLines })) out.push(b);
  return Buffer.concat(out);
}

describe('protocol fuzzing', () => {
  it('R-X2 any byte stream frames and parses the same whole or cut anywhere, and never throws', () => {
    fc.assert(
      fc.property(pop3Bytes, fc.array(fc.nat(), { maxLength: 20 }), fc.integer({ min: 40, max: 1024 }), (stream, cuts, max) => {
        assert.deepEqual(frameAll(stream, cuts, max), frameAll(stream, [], max));
      }),
      { numRuns: RUNS },
    );
  });

  it('R-S2 framing never holds more than the line limit of an unfinished line', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), fc.integer({ min: 40, max: 1024 }), (bytes, max) => {
        const reader = new LineReader(max);
        reader.push(Buffer.from(bytes));
        while (reader.next() !== undefined);
        assert.ok(reader.buffered < max, `buffered ${reader.buffered} with limit ${max}`);
      }),
      { numRuns: RUNS },
    );
  });

  it('R-S19 R-K8 R-S4 any stored message is served as stuffed CRLF lines of exactly its reported size', async () => {
    await fc.assert(
      fc.asyncProperty(pop3Bytes, fc.array(fc.nat(), { maxLength: 10 }), async (message, cuts) => {
        const wire = await serve(message, cuts);
        const text = wire.toString('latin1');
        assert.ok(text.endsWith('.\r\n'));
        const body = text.slice(0, -3);
        assert.ok(body === '' || body.endsWith('\r\n'), 'every line ends with CRLF');
        const lines = body === '' ? [] : body.slice(0, -2).split('\r\n');
        for (const l of lines) {
          assert.ok(!/[\r\n]/.test(l), 'no bare CR or LF inside a line');
          assert.notEqual(l, '.', 'no line reads as the terminator');
        }
        const unstuffed = lines.map((l) => (l.startsWith('.') ? l.slice(1) : l));
        const size = unstuffed.reduce((n, l) => n + l.length + 2, 0);
        assert.equal(size, crlfSize(message));
        const sizer = new CrlfSizer();
        let last = 0;
        for (const p of [...new Set(cuts.map((c) => c % (message.length + 1)))].sort((a, b) => a - b)) {
          sizer.push(message.subarray(last, p));
          last = p;
        }
        sizer.push(message.subarray(last));
        assert.equal(sizer.total(), size, 'the incremental size counter agrees, in any chunking');
        assert.deepEqual(await serve(message, []), wire, 'chunking does not change the output');
      }),
      { numRuns: RUNS },
    );
  });

  it('R-K6 TOP output is RETR output cut after the headers, the blank line and n body lines', async () => {
    await fc.assert(
      fc.asyncProperty(pop3Bytes, fc.nat({ max: 6 }), fc.array(fc.nat(), { maxLength: 5 }), async (message, n, cuts) => {
        const retr = (await serve(message, [])).toString('latin1');
        const top = (await serve(message, cuts, n)).toString('latin1');
        const retrLines = retr.slice(0, -3).split('\r\n').slice(0, -1);
        const topLines = top.slice(0, -3).split('\r\n').slice(0, -1);
        const blank = retrLines.indexOf('');
        const want = blank === -1 ? retrLines : retrLines.slice(0, blank + 1 + n);
        assert.deepEqual(topLines, want);
      }),
      { numRuns: RUNS },
    );
  });
});

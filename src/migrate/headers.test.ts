/**
 * Import's header reader (headers.ts) reads the header block by the one line-end rule
 * (protocol/line-rule.ts), the block RETR and TOP serve.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { headerValue } from './headers.js';
import { storedLines } from '../protocol/line-rule.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

const textArb = fc
  .array(fc.oneof(fc.constantFrom('\r', '\n', '\r\n', ' ', '\t', 'X-UIDL: ', 'x-uidl:', 'Status: RO', ':'), fc.string({ maxLength: 12 })), { maxLength: 40 })
  .map((parts) => Buffer.from(parts.join(''), 'latin1'));

describe('import header fields (migrate/headers.ts)', () => {
  it('R-X11 R-S19 regression: a header block ended by a bare-CR empty line; a body line is not read as X-UIDL', () => {
    // headers.ts looked for the end of the header block as "\n\n" or "\r\n\r\n" only, so with
    // bare CR line ends (or LF then CRLF) it read the whole message and took a body line for a field.
    for (const eol of ['\r', '\n\r\n', '\r\n\n', '\r\r\n']) {
      const stored = Buffer.from(`Subject: a${eol}${eol === '\n\r\n' ? '' : eol}X-UIDL: from-the-body\r\n`, 'latin1');
      assert.equal(headerValue(stored, 'X-UIDL'), undefined, JSON.stringify(eol));
    }
    assert.equal(headerValue(Buffer.from('Subject: a\rX-UIDL: abc\r\r.body\r', 'latin1'), 'X-UIDL'), 'abc');
  });

  it('R-X11 a field is read whatever the line ends, unfolded, case-insensitively', () => {
    for (const eol of ['\r\n', '\n', '\r']) {
      const stored = Buffer.from(['From: a', 'x-uidl:  one', '\t two', '  three', 'Status: RO', '', 'X-UIDL: body'].join(eol), 'latin1');
      assert.equal(headerValue(stored, 'X-UIDL'), 'one two three', JSON.stringify(eol));
      assert.equal(headerValue(stored, 'Status'), 'RO');
      assert.equal(headerValue(stored, 'Subject'), undefined);
    }
  });

  it('R-X11 a field after the first empty line (by the line-end rule) is never read', () => {
    fc.assert(
      fc.property(textArb, textArb, (head, body) => {
        const stored = Buffer.concat([head, Buffer.from('\r\rX-UIDL: from-body\r\n'), body]);
        const inHead = [...storedLines(head)].some((l) => /^x-uidl:/i.test(l.toString('latin1')));
        if (!inHead) assert.equal(headerValue(stored, 'X-UIDL'), undefined);
      }),
      { numRuns: RUNS },
    );
  });
});

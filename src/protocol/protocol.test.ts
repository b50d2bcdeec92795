/**
 * The protocol layer is pure and total (DESIGN.md habit 1). The central test feeds one stream of
 * commands whole and in chunks of 1, 2, 4 … 512 octets and expects identical results; the body
 * transform and the size counter are checked the same way and against each other (R-S4).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { LineReader, type LineEvent } from './line-reader.js';
import { parseCommand, type ParseResult } from './command.js';
import { stuffBody } from './dot-stuffing.js';
import { CrlfSizer, crlfSize } from './crlf.js';
import { err, multiline, ok } from './response.js';

function frame(stream: Buffer, chunk: number, max = 512): LineEvent[] {
  const reader = new LineReader(max);
  const events: LineEvent[] = [];
  for (let i = 0; i < stream.length; i += chunk) {
    reader.push(stream.subarray(i, i + chunk));
    for (let e = reader.next(); e !== undefined; e = reader.next()) events.push(e);
  }
  return events;
}

function describeResult(r: ParseResult): unknown {
  return r.ok ? r.command : { error: r.error.code, text: r.error.message };
}

const COMMANDS = [
  'USER alice', 'user\tDOMAIN\\alice/shared', 'PASS  secret with  spaces ', 'APOP alice c4c9334bac560ecc979e58001b3e22fb',
  'CAPA', 'STAT', 'LIST', 'LIST 2', 'list\t\t3', 'RETR 1', 'DELE 10', 'NOOP', 'RSET', 'TOP 1 0', 'TOP 2   15', 'UIDL',
  'UIDL 7', 'LAST', 'QUIT', 'XYZZY', '', '   ', 'RETR', 'RETR -1', 'RETR 1e3', 'RETR +1', 'RETR 0x10', 'STAT 1',
  'TOP 1', 'LIST 1 2', 'RETR 99999999999999999999', 'USER a\x00b', 'PASS \x00', 'US\u00e9R x', 'RETR 1\x01',
  'AUTH', 'AUTH plain', 'AUTH PLAIN AGFsaWNlAHB3', 'AUTH PLAIN =', 'AUTH A B C', 'STLS', 'stls x', 'UTF8',
];

describe('protocol', () => {
  it('R-X2 the same bytes framed whole and in chunks of 1, 2, 4 … 512 give identical commands', () => {
    const long = 'X'.repeat(600);
    const stream = Buffer.concat([
      Buffer.from(COMMANDS.map((c) => `${c}\r\n`).join('')),
      Buffer.from(`${long}\r\nNOOP\nSTAT\r\n`),
      Buffer.from([0x55, 0x53, 0x45, 0x52, 0x20, 0xff, 0xfe, 0x0d, 0x0a]), // USER + invalid UTF-8
    ]);
    const whole = frame(stream, stream.length).map((e) => (e.kind === 'line' ? describeResult(parseCommand(e.line)) : e.kind));
    assert.equal(whole.length, COMMANDS.length + 4);
    for (let size = 1; size <= 512; size *= 2) {
      const chunked = frame(stream, size).map((e) => (e.kind === 'line' ? describeResult(parseCommand(e.line)) : e.kind));
      assert.deepEqual(chunked, whole, `chunk size ${size}`);
    }
  });

  it('R-K8 R-S1 keywords are case-insensitive and arguments split on runs of SPACE or TAB', () => {
    assert.deepEqual(describeResult(parseCommand(Buffer.from('top \t 3\t 7'))), { name: 'TOP', msg: 3, lines: 7 });
    assert.deepEqual(describeResult(parseCommand(Buffer.from('uIdL'))), { name: 'UIDL', msg: undefined });
    assert.deepEqual(describeResult(parseCommand(Buffer.from('USER\t\tbob  '))), { name: 'USER', user: 'bob' });
  });

  it('R-X4 R-X3 R-X5 AUTH takes an optional mechanism (upper-cased) and initial response; STLS and UTF8 take nothing', () => {
    const parse = (l: string): unknown => describeResult(parseCommand(Buffer.from(l)));
    assert.deepEqual(parse('AUTH'), { name: 'AUTH', mechanism: undefined, initialResponse: undefined });
    assert.deepEqual(parse('auth scram-sha-256'), { name: 'AUTH', mechanism: 'SCRAM-SHA-256', initialResponse: undefined });
    assert.deepEqual(parse('AUTH PLAIN AGFsaWNlAHB3'), { name: 'AUTH', mechanism: 'PLAIN', initialResponse: 'AGFsaWNlAHB3' });
    assert.deepEqual(parse('AUTH PLAIN ='), { name: 'AUTH', mechanism: 'PLAIN', initialResponse: '=' });
    assert.deepEqual(parse('AUTH A B C'), { error: 'BAD_SYNTAX', text: 'Too many arguments for AUTH' });
    assert.deepEqual(parse('STLS'), { name: 'STLS' });
    assert.deepEqual(parse('STLS now'), { error: 'BAD_SYNTAX', text: 'STLS takes no arguments' });
    assert.deepEqual(parse('utf8'), { name: 'UTF8' });
  });

  it('R-S15 PASS takes the whole rest of the line, inner and trailing spaces included', () => {
    assert.deepEqual(describeResult(parseCommand(Buffer.from('PASS  my secret  '))), { name: 'PASS', password: 'my secret  ' });
    assert.deepEqual(describeResult(parseCommand(Buffer.from('PASS pässwörd'))), { name: 'PASS', password: 'pässwörd' });
  });

  it('bad arguments are typed errors, never exceptions', () => {
    const cases: Array<[string, string]> = [
      ['RETR', 'BAD_SYNTAX'], ['RETR -1', 'BAD_SYNTAX'], ['RETR 1e3', 'BAD_SYNTAX'], ['STAT 1', 'BAD_SYNTAX'],
      ['TOP 1', 'BAD_SYNTAX'], ['XYZZY', 'UNKNOWN_COMMAND'], ['', 'BAD_SYNTAX'], ['USER a\x00b', 'BAD_SYNTAX'],
      ['RETR 1\x01', 'BAD_SYNTAX'],
    ];
    for (const [line, code] of cases) {
      const r = parseCommand(Buffer.from(line, 'latin1'));
      assert.equal(r.ok, false, line);
      if (!r.ok) assert.equal(r.error.code, code, line);
    }
    const huge = parseCommand(Buffer.from('RETR 99999999999999999999'));
    assert.ok(huge.ok && huge.command.name === 'RETR' && huge.command.msg > 2 ** 31 - 1);
  });

  it('R-S2 a line over the limit is reported once and never buffered whole', () => {
    const reader = new LineReader(40);
    reader.push(Buffer.from('A'.repeat(39)));
    assert.equal(reader.next(), undefined);
    reader.push(Buffer.from('A'.repeat(1024 * 1024)));
    assert.deepEqual(reader.next(), { kind: 'too-long' });
    assert.ok(reader.buffered < 64, 'the long line is dropped, not held');
    reader.push(Buffer.from('still the same line\r\nNOOP\r\n'));
    const e = reader.next();
    assert.ok(e?.kind === 'line' && e.line.toString() === 'NOOP');
    // Exactly at the limit (38 octets + CRLF = 40) is accepted; one more is not.
    const r2 = new LineReader(40);
    r2.push(Buffer.from(`${'B'.repeat(38)}\r\n${'C'.repeat(39)}\r\n`));
    assert.equal(r2.next()?.kind, 'line');
    assert.equal(r2.next()?.kind, 'too-long');
  });

  it('R-S6 status lines never exceed 512 octets', () => {
    assert.equal(ok('x'.repeat(2000)).length, 512);
    assert.equal(err('é'.repeat(600), 'SYS/TEMP').length <= 512, true);
    assert.ok(err('é'.repeat(600)).toString('utf8').endsWith('\r\n'));
  });

  it('R-K8 server-generated multi-line replies are dot-stuffed and end with .CRLF', () => {
    assert.equal(multiline('x', ['a', '.b']).toString(), '+OK x\r\na\r\n..b\r\n.\r\n');
  });
});

async function serve(message: Buffer, chunk: number, topLines?: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let i = 0; i < message.length; i += chunk) parts.push(message.subarray(i, i + chunk));
  const out: Buffer[] = [];
  for await (const b of stuffBody(Readable.from(parts), { topLines })) out.push(b);
  return Buffer.concat(out);
}

const MESSAGES: Record<string, string> = {
  crlf: 'Subject: a\r\n\r\nbody\r\n.dot line\r\n..two\r\n',
  bareLf: 'Subject: a\n\nbody\n.dot line\nlast',
  bareCr: 'Subject: a\r\rbody\r.x\r',
  mixed: 'A: 1\r\nB: 2\n\r\n.\r\nline\r\r\n\n\rend',
  noBody: 'Subject: only headers',
  empty: '',
  dots: '.\r\n..\r\n.\r\n',
};

describe('message bodies', () => {
  it('R-S19 R-K8 bare LF, bare CR and a missing final newline are served as CRLF, dot-stuffed', async () => {
    assert.equal((await serve(Buffer.from(MESSAGES.bareLf!), 1 << 20)).toString(), 'Subject: a\r\n\r\nbody\r\n..dot line\r\nlast\r\n.\r\n');
    assert.equal((await serve(Buffer.from(MESSAGES.bareCr!), 1 << 20)).toString(), 'Subject: a\r\n\r\nbody\r\n..x\r\n.\r\n');
    assert.equal((await serve(Buffer.from(MESSAGES.empty!), 1 << 20)).toString(), '.\r\n');
    assert.equal((await serve(Buffer.from(MESSAGES.dots!), 1 << 20)).toString(), '..\r\n...\r\n..\r\n.\r\n');
  });

  it('R-S4 the size counter equals the octets served before stuffing, in any chunking', async () => {
    for (const [name, text] of Object.entries(MESSAGES)) {
      const msg = Buffer.from(text);
      const whole = await serve(msg, 1 << 20);
      const unstuffed = whole
        .subarray(0, whole.length - 3)
        .toString('latin1')
        .replace(/(^|\r\n)\./g, '$1');
      assert.equal(crlfSize(msg), Buffer.byteLength(unstuffed, 'latin1'), name);
      for (let size = 1; size <= 16; size *= 2) {
        assert.deepEqual(await serve(msg, size), whole, `${name} chunk ${size}`);
        const sizer = new CrlfSizer();
        for (let i = 0; i < msg.length; i += size) sizer.push(msg.subarray(i, i + size));
        assert.equal(sizer.total(), crlfSize(msg), `${name} sizer chunk ${size}`);
      }
    }
  });

  it('R-K6 TOP sends the headers, the blank line and at most n body lines', async () => {
    const msg = Buffer.from('A: 1\nB: 2\n\nl1\n.l2\nl3\n');
    assert.equal((await serve(msg, 3, 0)).toString(), 'A: 1\r\nB: 2\r\n\r\n.\r\n');
    assert.equal((await serve(msg, 3, 2)).toString(), 'A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\n.\r\n');
    assert.equal((await serve(msg, 1, 99)).toString(), 'A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n');
    assert.equal((await serve(Buffer.from(MESSAGES.noBody!), 2, 5)).toString(), 'Subject: only headers\r\n.\r\n');
  });

  it('TOP stops reading the source once it has sent enough', async () => {
    let pulled = 0;
    async function* source(): AsyncGenerator<Buffer> {
      yield Buffer.from('H: 1\r\n\r\nline\r\n');
      for (;;) {
        pulled++;
        yield Buffer.from('more\r\n');
        if (pulled > 1000) throw new Error('read too far');
      }
    }
    const out: Buffer[] = [];
    for await (const b of stuffBody(source(), { topLines: 1 })) out.push(b);
    assert.equal(Buffer.concat(out).toString(), 'H: 1\r\n\r\nline\r\n.\r\n');
    assert.ok(pulled <= 1);
  });
});

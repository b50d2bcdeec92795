/** PROXY protocol v1 and v2 headers (R-X13), parsed whole and byte by byte. */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { parseProxyHeader } from './proxy-protocol.js';

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

function v2(cmd: number, fam: number, body: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head[0] = 0x20 | cmd;
  head[1] = fam;
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([SIG, head, body]);
}

it('R-X13 PROXY v1 TCP4 and TCP6 give the client address and how many octets to skip', () => {
  const h = Buffer.from('PROXY TCP4 192.0.2.10 198.51.100.1 56324 110\r\nUSER a\r\n');
  assert.deepEqual(parseProxyHeader(h), {
    kind: 'proxied', source: { address: '192.0.2.10', port: 56324 }, destination: { address: '198.51.100.1', port: 110 }, consumed: 46,
  });
  const r6 = parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::1 2001:db8::2 4000 995\r\n'));
  assert.equal(r6.kind === 'proxied' && r6.source.address, '2001:db8::1');
  assert.deepEqual(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n')), { kind: 'local', consumed: 15 });
});

it('R-X13 PROXY v2 PROXY and LOCAL commands over IPv4 and IPv6', () => {
  const body4 = Buffer.from([192, 0, 2, 10, 198, 51, 100, 1, 0xdc, 0x04, 0x00, 0x6e]);
  assert.deepEqual(parseProxyHeader(Buffer.concat([v2(1, 0x11, body4), Buffer.from('USER')])), {
    kind: 'proxied', source: { address: '192.0.2.10', port: 56324 }, destination: { address: '198.51.100.1', port: 110 }, consumed: 28,
  });
  const body6 = Buffer.alloc(36);
  Buffer.from('20010db8000000000000000000000001', 'hex').copy(body6, 0);
  body6.writeUInt16BE(4000, 32);
  const r6 = parseProxyHeader(v2(1, 0x21, body6));
  assert.equal(r6.kind === 'proxied' && r6.source.address, '2001:db8::1');
  assert.deepEqual(parseProxyHeader(v2(0, 0x00, Buffer.alloc(0))), { kind: 'local', consumed: 16 });
});

it('R-X13 headers cut anywhere are incomplete until whole; garbage and oversize are invalid', () => {
  for (const whole of [Buffer.from('PROXY TCP4 192.0.2.10 198.51.100.1 56324 110\r\n'), v2(1, 0x11, Buffer.alloc(12))]) {
    for (let i = 0; i < whole.length; i++) assert.equal(parseProxyHeader(whole.subarray(0, i)).kind, 'incomplete', `cut at ${i}`);
    assert.equal(parseProxyHeader(whole).kind, 'proxied');
  }
  for (const bad of ['USER alice\r\n', 'PROXY TCP4 1.2.3 4.5.6.7 1 2\r\n', 'PROXY TCP4 300.1.1.1 1.1.1.1 1 2\r\n', 'PROXY TCP4 1.1.1.1 1.1.1.1 99999 2\r\n', `PROXY ${'x'.repeat(120)}`]) {
    assert.equal(parseProxyHeader(Buffer.from(bad)).kind, 'invalid', bad);
  }
  const huge = Buffer.concat([SIG, Buffer.from([0x21, 0x11, 0xff, 0xff])]);
  assert.equal(parseProxyHeader(huge).kind, 'invalid');
});

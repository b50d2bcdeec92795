/**
 * The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2), sent by a load
 * balancer before the client's bytes to tell the real client address (R-X13). Pure: bytes in,
 * a typed result out. The listener accepts it only from configured trusted networks.
 */

export interface ProxyAddress {
  readonly address: string;
  readonly port: number;
}

export type ProxyResult =
  /** More bytes are needed. */
  | { readonly kind: 'incomplete' }
  /** A header naming the original client; `consumed` octets belong to the header. */
  | { readonly kind: 'proxied'; readonly source: ProxyAddress; readonly destination: ProxyAddress; readonly consumed: number }
  /** v2 LOCAL or v1 UNKNOWN: the connection is the proxy's own (health check); keep the peer address. */
  | { readonly kind: 'local'; readonly consumed: number }
  | { readonly kind: 'invalid'; readonly reason: string };

/** v2's 12-octet signature. */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** v1 lines are at most 107 octets including CRLF. */
const V1_MAX = 107;
/** Bound on a v2 header's TLV area that we are willing to buffer. */
const V2_MAX_LENGTH = 4096;

export function parseProxyHeader(buf: Buffer): ProxyResult {
  const sigLen = Math.min(buf.length, V2_SIGNATURE.length);
  if (buf.subarray(0, sigLen).equals(V2_SIGNATURE.subarray(0, sigLen))) {
    return buf.length < 16 ? { kind: 'incomplete' } : parseV2(buf);
  }
  const v1 = Buffer.from('PROXY ');
  const n = Math.min(buf.length, v1.length);
  if (!buf.subarray(0, n).equals(v1.subarray(0, n))) return { kind: 'invalid', reason: 'no PROXY header' };
  return parseV1(buf);
}

function parseV1(buf: Buffer): ProxyResult {
  const end = buf.indexOf('\r\n');
  if (end === -1) return buf.length >= V1_MAX ? { kind: 'invalid', reason: 'v1 header too long' } : { kind: 'incomplete' };
  if (end + 2 > V1_MAX) return { kind: 'invalid', reason: 'v1 header too long' };
  const parts = buf.subarray(0, end).toString('latin1').split(' ');
  const consumed = end + 2;
  if (parts[1] === 'UNKNOWN') return { kind: 'local', consumed };
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) return { kind: 'invalid', reason: 'malformed v1 header' };
  const [, family, src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  const ok4 = (a: string): boolean => /^(\d{1,3})(\.\d{1,3}){3}$/.test(a) && a.split('.').every((o) => Number(o) <= 255);
  const ok6 = (a: string): boolean => /^[0-9a-fA-F:.]+$/.test(a) && a.includes(':');
  const okAddr = family === 'TCP4' ? ok4 : ok6;
  const okPort = (p: string): boolean => /^\d{1,5}$/.test(p) && Number(p) <= 65535 && !(p.length > 1 && p.startsWith('0'));
  if (!okAddr(src) || !okAddr(dst) || !okPort(sport) || !okPort(dport)) return { kind: 'invalid', reason: 'malformed v1 address' };
  return { kind: 'proxied', source: { address: src, port: Number(sport) }, destination: { address: dst, port: Number(dport) }, consumed };
}

function parseV2(buf: Buffer): ProxyResult {
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return { kind: 'invalid', reason: 'unsupported v2 version' };
  const command = verCmd & 0x0f;
  const famProto = buf[13]!;
  const length = buf.readUInt16BE(14);
  if (length > V2_MAX_LENGTH) return { kind: 'invalid', reason: 'v2 header too long' };
  if (buf.length < 16 + length) return { kind: 'incomplete' };
  const consumed = 16 + length;
  if (command === 0x0) return { kind: 'local', consumed };
  if (command !== 0x1) return { kind: 'invalid', reason: 'unknown v2 command' };
  const body = buf.subarray(16, consumed);
  switch (famProto) {
    case 0x11: // TCP over IPv4: 4 + 4 + 2 + 2
      if (length < 12) return { kind: 'invalid', reason: 'short v2 IPv4 address block' };
      return {
        kind: 'proxied',
        source: { address: [...body.subarray(0, 4)].join('.'), port: body.readUInt16BE(8) },
        destination: { address: [...body.subarray(4, 8)].join('.'), port: body.readUInt16BE(10) },
        consumed,
      };
    case 0x21: // TCP over IPv6: 16 + 16 + 2 + 2
      if (length < 36) return { kind: 'invalid', reason: 'short v2 IPv6 address block' };
      return {
        kind: 'proxied',
        source: { address: ipv6(body.subarray(0, 16)), port: body.readUInt16BE(32) },
        destination: { address: ipv6(body.subarray(16, 32)), port: body.readUInt16BE(34) },
        consumed,
      };
    case 0x00: // UNSPEC: the receiver must ignore the address block
      return { kind: 'local', consumed };
    default:
      return { kind: 'invalid', reason: 'unsupported v2 address family' };
  }
}

function ipv6(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // Shorten the longest run of zero groups once (RFC 5952 §4.2).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  if (best === -1) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

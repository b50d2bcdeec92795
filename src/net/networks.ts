/**
 * Address lists such as R-S14's trusted networks: `127.0.0.0/8`, `::1/128`, or single addresses.
 * IPv4 clients of a dual-stack listener appear as `::ffff:a.b.c.d` and are matched as IPv4.
 */
import { BlockList, isIP } from 'node:net';

/** Why `entry` is not an address or CIDR network, or undefined when it is one. */
export function networkProblem(entry: string): string | undefined {
  const [addr, bits, extra] = entry.split('/');
  const family = isIP(addr ?? '');
  if (family === 0 || extra !== undefined) return `"${entry}" is not an IP address or address/prefix`;
  if (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128))) {
    return `"${entry}": prefix length must be 0–${family === 4 ? 32 : 128}`;
  }
  return undefined;
}

export function buildNetworks(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const e of entries) {
    const problem = networkProblem(e);
    if (problem !== undefined) throw new Error(problem);
    const [addr, bits] = e.split('/') as [string, string | undefined];
    const type = isIP(addr) === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
  }
  return list;
}

export function inNetworks(list: BlockList, address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const addr = mapped ? mapped[1]! : address;
  const family = isIP(addr);
  return family !== 0 && list.check(addr, family === 4 ? 'ipv4' : 'ipv6');
}

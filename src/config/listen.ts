/**
 * Listen addresses as written in the config: `host:port`, IPv6 in brackets (`[::]:110`).
 * Host is an IPv4 or IPv6 literal or a DNS name; port is 0–65535 (0 = any free port, for tests).
 */
import { isIP } from 'node:net';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Parses `host:port`; returns a problem description instead of throwing. */
export function tryParseListen(s: string): ListenAddress | string {
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0 || s[close + 1] !== ':') return `"${s}" is not [ipv6]:port`;
    host = s.slice(1, close);
    portText = s.slice(close + 2);
    if (isIP(host) !== 6) return `"${host}" in "${s}" is not an IPv6 address`;
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0) return `"${s}" has no port; write host:port, e.g. 0.0.0.0:110`;
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host.includes(':')) return `"${s}": write IPv6 addresses in brackets, e.g. [::]:110`;
    if (isIP(host) !== 4 && !HOSTNAME.test(host)) return `"${host}" in "${s}" is not an IPv4 address or host name`;
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    return `port "${portText}" in "${s}" is not a number 0–65535`;
  }
  return { host, port: Number(portText) };
}

/** Parses `host:port` or `[ipv6]:port`; throws an Error naming the problem. */
export function parseListen(s: string): ListenAddress {
  const r = tryParseListen(s);
  if (typeof r === 'string') throw new Error(r);
  return r;
}

/**
 * A free loopback port below the ephemeral range (32768–60999) for a program the tests start
 * (PostgreSQL, slapd, a KDC, HAProxy): a port in that range could be taken at any moment by a
 * client socket under load. A random port in 20000–32767 that binds on 127.0.0.1 now, for TCP
 * and, with `udp`, for UDP too (the KDC answers both). Another process may still take it before
 * the program binds: callers that can, retry on "address in use".
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

function tcpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const u = createSocket('udp4');
    u.once('error', () => {
      u.close();
      resolve(false);
    });
    u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
  });
}

export async function freeLowPort(opts: { readonly udp?: boolean } = {}): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const port = 20000 + Math.floor(Math.random() * 12768);
    if ((await tcpFree(port)) && (opts.udp !== true || (await udpFree(port)))) return port;
  }
  throw new Error('no free loopback port in 20000-32767');
}

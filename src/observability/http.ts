/**
 * The operations HTTP endpoint (R-X13): `GET /metrics` in Prometheus text format and
 * `GET /health` (200 with a JSON body while the server accepts connections, 503 otherwise).
 * Bind it to loopback or a management network; it carries no secrets but tells about load.
 */
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface Health {
  readonly ok: boolean;
  readonly [key: string]: unknown;
}

export interface OpsServer {
  address(): AddressInfo;
  close(): Promise<void>;
}

export async function startOpsServer(opts: {
  readonly host: string;
  readonly port: number;
  /** What `/metrics` shows: a registry, or with workers the primary's aggregate of all of them (R-X16). */
  readonly registry: Pick<Registry, 'metrics' | 'contentType'>;
  readonly health: () => Health;
}): Promise<OpsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      opts.registry
        .metrics()
        .then((text) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(text))
        .catch(() => res.writeHead(500).end());
      return;
    }
    if (path === '/health') {
      const h = opts.health();
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify({ status: h.ok ? 'ok' : 'unavailable', ...h })}\n`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  server.listen({ host: opts.host, port: opts.port });
  await once(server, 'listening');
  return {
    address: () => server.address() as AddressInfo,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/**
 * TCP listeners for POP3 (R-S5: every binding configurable, IPv4 and IPv6), plain or implicit
 * TLS (RFC 8314, port 995). Each accepted connection passes, in order: the PROXY header when it
 * comes from a trusted proxy (R-X13), the connection caps (R-X9), then goes to the connection
 * handler the listener was made with (server.ts: it starts a Session). The listener knows
 * sockets and addresses, never POP3 beyond a refusal line, and imports nothing of session/.
 * Implicit-TLS sockets are wrapped with the TLS provider's current context, so a certificate
 * reload applies to the next connection. close() drains: no new connections, connections get
 * until a deadline.
 */
import { createServer, type AddressInfo, type BlockList, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { channels } from '../observability/channels.js';
import type { Admission, ConnectionCaps } from '../policy/connection-caps.js';
import { err } from '../protocol/response.js';
import { inNetworks } from './networks.js';
import { readProxyHeader, withPrefix } from './proxy-reader.js';
import type { TlsProvider } from './tls.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface ListenerOptions {
  readonly limits: ConnectionCaps;
  /** Peers allowed to send a PROXY header; undefined: PROXY is not accepted from anyone. */
  readonly proxyNetworks?: BlockList | undefined;
}

/** An accepted connection, as the listener passes it on. */
export interface ConnectionInfo {
  /**
   * Unique in this process: the listener's prefix (server.ts `sessionIdPrefix`: a worker's
   * `<worker id>-`, R-X16, so ids are unique across workers too), a random part and a counter.
   */
  readonly id: string;
  /** The client's address: the socket's peer, or the PROXY header's source (R-X13). */
  readonly remoteAddress: string;
  /** The socket is a TLSSocket of an implicit-TLS listener (RFC 8314). */
  readonly secure: boolean;
}

/** What the handler made of a connection: the listener drains it at close(). */
export interface Connection {
  /** Resolves when the connection has ended and released what it held. */
  readonly closed: Promise<void>;
  /** Server shutdown begins: finish what is safe to finish. */
  shutdown(): void;
  /** Server shutdown deadline: drop the connection now. */
  abort(): void;
}

export type ConnectionHandler = (socket: Socket, info: ConnectionInfo) => Connection;

const REFUSALS: Record<string, string> = {
  total: 'Too many connections, try again later',
  ip: 'Too many connections from your address, try again later',
  shutdown: 'Server shutting down, try again later',
};

export class Pop3Listener {
  private readonly servers: Server[] = [];
  private readonly tlsServers = new Set<Server>();
  private readonly sessions = new Set<Connection>();
  private readonly idPrefix: string;
  private counter = 0;
  /** Set by stopAccepting: resolves once every listening socket has closed. */
  private stopped: Promise<unknown> | undefined;

  /**
   * `tls`: the certificates of implicit-TLS listeners; `logger`: refusals are logged there;
   * `idPrefix`: put before every session id (ConnectionInfo.id).
   */
  constructor(
    private readonly handler: ConnectionHandler,
    private options: ListenerOptions,
    private readonly tls: TlsProvider | undefined,
    private readonly logger: Logger,
    idPrefix = '',
  ) {
    this.idPrefix = idPrefix + randomBytes(3).toString('hex');
  }

  /** New connections use these; live ones are not touched (R-S20: no dropped sessions). */
  update(options: ListenerOptions): void {
    this.options = options;
  }

  /** `tls`: implicit TLS on these addresses (needs the TLS provider). */
  async listen(addresses: readonly ListenAddress[], opts: { tls?: boolean } = {}): Promise<void> {
    const tls = opts.tls === true;
    if (tls && this.tls === undefined) throw new Error('implicit TLS listener without a certificate');
    for (const address of addresses) {
      const server = createServer({ allowHalfOpen: true }, (socket) => void this.accept(socket, tls));
      server.listen({ host: address.host, port: address.port, ipv6Only: address.host.includes(':') && address.host !== '::' });
      await once(server, 'listening');
      this.servers.push(server);
      if (tls) this.tlsServers.add(server);
    }
  }

  /** Bound addresses; `tls` selects the implicit-TLS ones (true) or the plain ones (false). */
  addresses(tls?: boolean): AddressInfo[] {
    return this.servers
      .filter((s) => tls === undefined || this.tlsServers.has(s) === tls)
      .map((s) => s.address() as AddressInfo);
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Shutting down: stopAccepting has run. */
  private get draining(): boolean {
    return this.stopped !== undefined;
  }

  get accepting(): boolean {
    return !this.draining && this.servers.length > 0;
  }

  private async accept(raw: Socket, tls: boolean): Promise<void> {
    raw.on('error', () => undefined); // a reset before the session exists is not an error of ours
    let ip = raw.remoteAddress ?? 'unknown';
    let stream: Socket | Duplex = raw;
    const proxies = this.options.proxyNetworks;
    if (proxies !== undefined && inNetworks(proxies, ip)) {
      const header = await readProxyHeader(raw);
      if (!header.ok) {
        this.logger.warn({ event: 'proxy_refused', ip, reason: header.reason }, 'PROXY header refused');
        channels.refused.publish({ reason: 'proxy' });
        raw.destroy();
        return;
      }
      if (header.source !== undefined) ip = header.source.address;
      if (tls) stream = withPrefix(raw, header.rest);
      else {
        if (header.rest.length > 0) raw.unshift(header.rest);
        raw.resume();
      }
    }
    const limits = this.options.limits;
    let admission: Admission | 'shutdown' | 'unavailable' = 'shutdown';
    if (!this.draining) {
      admission = await limits.admit(ip).catch((e: unknown) => {
        this.logger.error({ err: e, ip }, 'connection caps unavailable');
        return 'unavailable' as const; // fail closed
      });
    }
    if (admission === 'ok' && this.draining) {
      limits.release(ip);
      admission = 'shutdown';
    }
    if (admission !== 'ok') return this.refuse(raw, tls, ip, admission);
    const socket = tls ? this.tls!.wrap(stream) : raw;
    const session = this.handler(socket, { id: `${this.idPrefix}${(this.counter++).toString(36)}`, remoteAddress: ip, secure: tls });
    this.sessions.add(session);
    void session.closed.then(() => {
      this.sessions.delete(session);
      limits.release(ip);
    });
  }

  /** R-X9: a refused connection gets `-ERR [SYS/TEMP]` (plain POP3 only) and is closed. */
  private refuse(raw: Socket, tls: boolean, ip: string, reason: string): void {
    this.logger.warn({ event: 'connection_refused', ip, reason }, 'connection refused');
    channels.refused.publish({ reason });
    if (tls) {
      raw.destroy(); // a plaintext line means nothing to a TLS client; a handshake is not worth it
      return;
    }
    raw.end(err(REFUSALS[reason] ?? 'Try again later', 'SYS/TEMP'));
    setTimeout(() => raw.destroy(), 2000).unref();
  }

  /**
   * Stops accepting and drains: sessions not logged in are closed at once, logged-in ones may
   * finish until `deadlineMs` passes, then are closed without UPDATE (R-K4). A QUIT already in
   * UPDATE completes before its session counts as closed, so no UPDATE is left half-applied.
   */
  async close(deadlineMs = 0): Promise<void> {
    this.stopAccepting();
    for (const session of this.sessions) session.shutdown();
    const all = (): Promise<unknown> => Promise.all([...this.sessions].map((s) => s.closed));
    if (deadlineMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all(), new Promise((r) => (timer = setTimeout(r, deadlineMs)))]);
      clearTimeout(timer);
    }
    for (const session of this.sessions) session.abort();
    await all();
    await this.stopped;
  }

  /**
   * Closes the listening sockets; sessions already open go on (close() drains them). A connection
   * the kernel had already completed is told `-ERR [SYS/TEMP] Server shutting down`. R-X16: the
   * first step of a multi-process stop, so no worker greets a connection once any has begun to drain.
   */
  stopAccepting(): void {
    if (this.draining) return;
    this.stopped = Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.servers.length = 0;
  }
}

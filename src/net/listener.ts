/**
 * TCP listeners for POP3 (R-S5: every binding configurable, IPv4 and IPv6), plain or implicit
 * TLS (RFC 8314, port 995). Each accepted connection passes, in order: the PROXY header when it
 * comes from a trusted proxy (R-X13), the connection caps (R-X9), then becomes a Session. The
 * listener knows sockets and addresses, never POP3 beyond a refusal line. Implicit-TLS sockets
 * are wrapped with the TLS provider's current context, so a certificate reload applies to the
 * next connection. close() drains: no new connections, sessions get until a deadline.
 */
import { createServer, type AddressInfo, type BlockList, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { channels } from '../observability/channels.js';
import { err } from '../protocol/response.js';
import { Session } from '../session/session.js';
import type { SessionServices, SessionSettings } from '../session/context.js';
import type { ConnectionLimits } from '../session/limits.js';
import { inNetworks } from './networks.js';
import { readProxyHeader, withPrefix } from './proxy-reader.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface ListenerOptions {
  /** The greeting after `+OK` (R-X13: configurable banner). */
  readonly greeting: string;
  readonly limits: ConnectionLimits;
  /** Peers allowed to send a PROXY header; undefined: PROXY is not accepted from anyone. */
  readonly proxyNetworks?: BlockList | undefined;
}

const REFUSALS: Record<string, string> = {
  total: 'Too many connections, try again later',
  ip: 'Too many connections from your address, try again later',
  shutdown: 'Server shutting down, try again later',
};

export class Pop3Listener {
  private readonly servers: Server[] = [];
  private readonly tlsServers = new Set<Server>();
  private readonly sessions = new Set<Session>();
  private readonly idPrefix = randomBytes(3).toString('hex');
  private counter = 0;
  private draining = false;

  constructor(
    private services: SessionServices,
    private settings: SessionSettings,
    private options: ListenerOptions,
  ) {}

  /** New sessions use these; live ones keep theirs (R-S20: no dropped sessions). */
  update(settings: SessionSettings, options: ListenerOptions, services: SessionServices = this.services): void {
    if ((services.tls === undefined) !== (this.services.tls === undefined)) throw new Error('TLS cannot be turned on or off while listening');
    this.settings = settings;
    this.options = options;
    this.services = services;
  }

  /** `tls`: implicit TLS on these addresses (needs the services' TLS provider). */
  async listen(addresses: readonly ListenAddress[], opts: { tls?: boolean } = {}): Promise<void> {
    const tls = opts.tls === true;
    if (tls && this.services.tls === undefined) throw new Error('implicit TLS listener without a certificate');
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
        this.services.logger.warn({ event: 'proxy_refused', ip, reason: header.reason }, 'PROXY header refused');
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
    const admission = this.draining ? 'shutdown' : this.options.limits.admit(ip);
    if (admission !== 'ok') return this.refuse(raw, tls, ip, admission);
    const socket = tls ? this.services.tls!.wrap(stream) : raw;
    const session = new Session(socket, this.services, this.settings, {
      id: `${this.idPrefix}${(this.counter++).toString(36)}`,
      remoteAddress: ip,
      secure: tls,
    });
    this.sessions.add(session);
    void session.closed.then(() => {
      this.sessions.delete(session);
      this.options.limits.release(ip);
    });
    session.start(this.options.greeting);
  }

  /** R-X9: a refused connection gets `-ERR [SYS/TEMP]` (plain POP3 only) and is closed. */
  private refuse(raw: Socket, tls: boolean, ip: string, reason: string): void {
    this.services.logger.warn({ event: 'connection_refused', ip, reason }, 'connection refused');
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
    this.draining = true;
    const stopped = Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.servers.length = 0;
    for (const session of this.sessions) session.shutdown();
    const all = (): Promise<unknown> => Promise.all([...this.sessions].map((s) => s.closed));
    if (deadlineMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all(), new Promise((r) => (timer = setTimeout(r, deadlineMs)))]);
      clearTimeout(timer);
    }
    for (const session of this.sessions) session.abort();
    await all();
    await stopped;
  }
}

/**
 * TCP listeners for POP3 (R-S5: every binding configurable), plain or implicit TLS (RFC 8314,
 * port 995). Each connection becomes a Session; the listener knows sockets and addresses, never
 * POP3 beyond handing the socket over. Implicit-TLS sockets are wrapped with the TLS provider's
 * current context, so a certificate reload applies to the next connection.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Session } from '../session/session.js';
import type { SessionServices, SessionSettings } from '../session/context.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export class Pop3Listener {
  private readonly servers: Server[] = [];
  private readonly tlsServers = new Set<Server>();
  private readonly sessions = new Set<Session>();
  private readonly idPrefix = randomBytes(3).toString('hex');
  private counter = 0;

  constructor(
    private readonly services: SessionServices,
    private settings: SessionSettings,
    private readonly greeting: string,
  ) {}

  /** New sessions use these settings; live ones keep theirs (R-S20: no dropped sessions). */
  updateSettings(settings: SessionSettings): void {
    this.settings = settings;
  }

  /** `tls`: implicit TLS on these addresses (needs the services' TLS provider). */
  async listen(addresses: readonly ListenAddress[], opts: { tls?: boolean } = {}): Promise<void> {
    const tls = opts.tls === true;
    if (tls && this.services.tls === undefined) throw new Error('implicit TLS listener without a certificate');
    for (const address of addresses) {
      const server = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket, tls));
      server.listen({ host: address.host, port: address.port });
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

  private accept(raw: Socket, tls: boolean): void {
    const remoteAddress = raw.remoteAddress ?? 'unknown';
    const socket = tls ? this.services.tls!.wrap(raw) : raw;
    const session = new Session(socket, this.services, this.settings, {
      id: `${this.idPrefix}${(this.counter++).toString(36)}`,
      remoteAddress,
      secure: tls,
    });
    this.sessions.add(session);
    void session.closed.then(() => this.sessions.delete(session));
    session.start(this.greeting);
  }

  /** Stops accepting, closes every session (nothing is deleted: no UPDATE) and waits for them. */
  async close(): Promise<void> {
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.servers.length = 0;
    const open = [...this.sessions];
    for (const session of open) session.abort();
    await Promise.all(open.map((s) => s.closed));
  }
}

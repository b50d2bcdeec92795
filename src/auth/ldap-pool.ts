/**
 * Connections to the LDAP directory (R-X19) on ldapts: a small pool of connections kept open and
 * reused, each prepared once (StartTLS, then the service bind or a user bind) before its first
 * use. The directory keeps two pools: one bound as the service account for look-ups, and one used
 * only for users' password binds, so a user bind never changes what a look-up runs as.
 *
 * - Failover: the URLs are tried in order, starting from the last one that answered.
 * - Timeouts: `timeoutMs` bounds connecting and every operation (ldapts `connectTimeout`, `timeout`).
 * - Reconnect: a connection whose socket closed (the server restarted, an idle timeout) is never
 *   used again (ldapts would reconnect it without its StartTLS and bind: that is refused, see
 *   onlyOnce); it is closed and a new one is made. An operation that fails on a reused connection
 *   for any reason but an LDAP result closes every idle connection and is tried once more on a
 *   new one, so a hung server costs a login at most two timeouts.
 * - An LDAP result (wrong password, no such object) leaves the connection in the pool; any other
 *   failure closes it. What cannot be done becomes a DirectoryUnavailableError (errors.ts): the caller then
 *   answers `-ERR [SYS/TEMP]` or `451`, never a login.
 */
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { Client, ResultCodeError } from 'ldapts';
import { DirectoryUnavailableError } from '../errors.js';

export interface LdapServerOptions {
  /** `ldap://host[:port]` or `ldaps://host[:port]`, in order of preference. */
  readonly urls: readonly string[];
  readonly timeoutMs: number;
  /** StartTLS on `ldap://` URLs before anything else is sent. */
  readonly starttls: boolean;
  /** PEM CA certificates for ldaps:// and StartTLS; undefined: the system's. */
  readonly ca?: string | undefined;
}

/** An LDAP result the server sent (the connection is fine), as opposed to a failure to talk. */
export const isLdapResult = (err: unknown): err is ResultCodeError => err instanceof ResultCodeError;

/**
 * Still connected. A connection never reconnects (onlyOnce): ldapts would reconnect a closed one
 * without its StartTLS and bind, so a connected client is the one that was prepared.
 */
const usable = (p: Pooled): boolean => p.client.isConnected;

/** `connect` for one call only: ldapts calls it again to reconnect, which then fails. */
function onlyOnce<A extends unknown[], R>(connect: (...args: A) => R): (...args: A) => R {
  let used = false;
  return (...args) => {
    if (used) throw new Error('connection lost');
    used = true;
    return connect(...args);
  };
}

interface Pooled {
  readonly client: Client;
  /** The URL it is connected to, for messages. */
  readonly url: string;
}

export class LdapPool {
  private readonly idle: Pooled[] = [];
  /** Callers waiting for a connection: handed an idle one, or undefined with a free place to open one. */
  private readonly waiting: ((c: Pooled | undefined) => void)[] = [];
  /** Places taken: connections open, being opened or in use. */
  private open = 0;
  private preferred = 0;
  private closed = false;

  /**
   * `prepare` runs once on each new connection after StartTLS (the service bind; nothing for the
   * user-bind pool); `size` connections at most are open, further callers wait for one.
   */
  constructor(
    private readonly server: LdapServerOptions,
    private readonly size: number,
    private readonly prepare: (client: Client) => Promise<void>,
  ) {}

  /**
   * Runs `op` on a prepared connection. LDAP results `op` throws are passed on unchanged (the
   * connection stays usable); anything else ends as a DirectoryUnavailableError.
   */
  async use<T>(op: (client: Client) => Promise<T>): Promise<T> {
    const idle = await this.acquire();
    try {
      return await this.run(idle ?? (await this.connect()), op);
    } catch (err) {
      // A reused connection may have been closed by the server since its last use: once more, on
      // a new connection (run() closed the idle ones with it).
      if (idle === undefined || isLdapResult(err)) throw err;
    }
    const fresh = await this.acquire();
    return this.run(fresh ?? (await this.connect()), op);
  }

  /** Closes every idle connection; connections in use close when they come back. */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w(undefined);
    await Promise.all(this.idle.splice(0).map((p) => this.discard(p)));
  }

  /** An idle connection, or undefined with a place taken for a new one. */
  private async acquire(): Promise<Pooled | undefined> {
    if (this.closed) throw new DirectoryUnavailableError('the LDAP directory connection is closed');
    for (let p = this.idle.pop(); p !== undefined; p = this.idle.pop()) {
      if (usable(p)) return p;
      void this.discard(p);
    }
    if (this.open < this.size) {
      this.open++;
      return undefined;
    }
    const p = await new Promise<Pooled | undefined>((resolve) => this.waiting.push(resolve));
    if (this.closed) throw new DirectoryUnavailableError('the LDAP directory connection is closed');
    if (p === undefined || usable(p)) return p;
    void p.client.unbind().catch(() => undefined); // its place passes to a new connection
    return undefined;
  }

  private async run<T>(p: Pooled, op: (client: Client) => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await op(p.client);
    } catch (err) {
      if (!isLdapResult(err)) {
        // The server restarted, or hangs: the idle connections are no better than this one.
        for (const other of this.idle.splice(0)) void this.discard(other);
        void this.discard(p);
        throw new DirectoryUnavailableError(`${p.url}: ${(err as Error).message}`, err);
      }
      this.release(p);
      throw err;
    }
    this.release(p);
    return result;
  }

  private release(p: Pooled): void {
    const next = this.waiting.shift();
    if (next !== undefined) next(p);
    else if (this.closed) void this.discard(p);
    else this.idle.push(p);
  }

  /** Gives a place back: to the first waiter (who opens a connection in it), else to the pool. */
  private freePlace(): void {
    const next = this.waiting.shift();
    if (next !== undefined) next(undefined);
    else this.open--;
  }

  private async discard(p: Pooled): Promise<void> {
    this.freePlace();
    await p.client.unbind().catch(() => undefined);
  }

  /** A new prepared connection in a place already taken: each URL in turn, from the preferred one. */
  private async connect(): Promise<Pooled> {
    const { urls } = this.server;
    const failures: string[] = [];
    for (let i = 0; i < urls.length; i++) {
      const index = (this.preferred + i) % urls.length;
      const url = urls[index]!;
      const client = new Client({
        url,
        timeout: this.server.timeoutMs,
        connectTimeout: this.server.timeoutMs,
        createConnection: onlyOnce(netConnect) as typeof netConnect,
        createSecureConnection: onlyOnce(tlsConnect) as typeof tlsConnect,
        ...(url.startsWith('ldaps:') ? { tlsOptions: this.tlsOptions() } : {}),
      });
      try {
        if (this.server.starttls && url.startsWith('ldap:')) await client.startTLS({ ...this.tlsOptions(), host: new URL(url).hostname });
        await this.prepare(client);
        this.preferred = index;
        return { client, url };
      } catch (err) {
        await client.unbind().catch(() => undefined);
        if (isLdapResult(err) && !(err.code === 52 || err.code === 51)) {
          // The server answered the StartTLS or the service bind with a refusal (not "busy" or
          // "unavailable"): another replica would say the same.
          this.freePlace();
          throw new DirectoryUnavailableError(`${url}: ${err.message}`, err);
        }
        failures.push(`${url}: ${(err as Error).message}`);
      }
    }
    this.freePlace();
    throw new DirectoryUnavailableError(`LDAP directory unavailable (${failures.join('; ')})`);
  }

  private tlsOptions(): ConnectionOptions {
    return { minVersion: 'TLSv1.2', ...(this.server.ca === undefined ? {} : { ca: this.server.ca }) };
  }
}

/**
 * Connection caps of R-X9, as Exchange has them: in total (MaxConnections), per remote IP
 * (MaxConnectionFromSingleIP) and per user (MaxConnectionsPerUser, 16 by default). The listener
 * asks `admit` before a session starts (net/listener.ts); a login asks `acquireUser`
 * (commands/login.ts); the session gives its user slot back when it ends. Caps may change on
 * reload; sessions already admitted are never dropped for it.
 *
 * They live here with the other limits that count at run time (poll-limits.ts: LOGIN-DELAY and
 * the daily download cap); fixed numbers live in protocol/limits.ts, the admin's values in
 * config/schema.ts (`pop3.max_connections*`).
 *
 * ConnectionCaps is the interface callers see; LocalConnectionCaps counts in this process. A count
 * kept across workers or hosts (DESIGN.md "one interface for shared state", issue #14) implements
 * the same interface: taking a slot is asynchronous and may reject when the shared count cannot
 * be reached, and the callers then refuse (fail closed: `-ERR [SYS/TEMP]`); giving a slot back
 * never throws (such an implementation logs and lets its lease expire).
 */

export interface LimitSettings {
  /** Sessions open at once, server-wide; 0 = unlimited. */
  readonly maxConnections: number;
  /** Sessions open at once from one IP address; 0 = unlimited. */
  readonly maxConnectionsPerIp: number;
  /** Logged-in sessions of one user at once; 0 = unlimited. */
  readonly maxConnectionsPerUser: number;
}

export type Admission = 'ok' | 'total' | 'ip';

export interface ConnectionCaps {
  /** Counts a new connection from `ip`, or says which cap refuses it. Rejects: refuse the connection. */
  admit(ip: string): Promise<Admission>;
  /** Gives back the slot of an admitted connection. */
  release(ip: string): void;
  /** Counts a login of `user`; false when the user already has the most sessions allowed. Rejects: refuse the login. */
  acquireUser(user: string): Promise<boolean>;
  /** Gives back the slot of a login counted by `acquireUser`. */
  releaseUser(user: string): void;
  /** New caps for what is admitted from now on (a reload). */
  update(settings: LimitSettings): void;
}

export const UNLIMITED: LimitSettings = { maxConnections: 0, maxConnectionsPerIp: 0, maxConnectionsPerUser: 0 };

/** The caps counted in this process's memory (one process serves every connection). */
export class LocalConnectionCaps implements ConnectionCaps {
  private total = 0;
  private readonly perIp = new Map<string, number>();
  private readonly perUser = new Map<string, number>();

  constructor(private settings: LimitSettings = UNLIMITED) {}

  update(settings: LimitSettings): void {
    this.settings = settings;
  }

  admit(ip: string): Promise<Admission> {
    return Promise.resolve(this.admitNow(ip));
  }

  private admitNow(ip: string): Admission {
    const { maxConnections, maxConnectionsPerIp } = this.settings;
    if (maxConnections > 0 && this.total >= maxConnections) return 'total';
    const fromIp = this.perIp.get(ip) ?? 0;
    if (maxConnectionsPerIp > 0 && fromIp >= maxConnectionsPerIp) return 'ip';
    this.total++;
    this.perIp.set(ip, fromIp + 1);
    return 'ok';
  }

  release(ip: string): void {
    this.total = Math.max(0, this.total - 1);
    const n = (this.perIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.perIp.delete(ip);
    else this.perIp.set(ip, n);
  }

  acquireUser(user: string): Promise<boolean> {
    const n = this.perUser.get(user) ?? 0;
    if (this.settings.maxConnectionsPerUser > 0 && n >= this.settings.maxConnectionsPerUser) return Promise.resolve(false);
    this.perUser.set(user, n + 1);
    return Promise.resolve(true);
  }

  releaseUser(user: string): void {
    const n = (this.perUser.get(user) ?? 1) - 1;
    if (n <= 0) this.perUser.delete(user);
    else this.perUser.set(user, n);
  }

}

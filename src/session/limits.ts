/**
 * Connection caps of R-X9, as Exchange has them: in total (MaxConnections), per remote IP
 * (MaxConnectionFromSingleIP) and per user (MaxConnectionsPerUser, 16 by default). The listener
 * asks `admit` before a session starts; a login asks `acquireUser`. Caps may change on reload;
 * sessions already admitted are never dropped for it.
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

export class ConnectionLimits {
  private total = 0;
  private readonly perIp = new Map<string, number>();
  private readonly perUser = new Map<string, number>();

  constructor(private settings: LimitSettings) {}

  update(settings: LimitSettings): void {
    this.settings = settings;
  }

  /** Counts a new connection from `ip`, or says which cap refuses it. */
  admit(ip: string): Admission {
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

  /** Counts a login of `user`; false when the user already has the most sessions allowed. */
  acquireUser(user: string): boolean {
    const n = this.perUser.get(user) ?? 0;
    if (this.settings.maxConnectionsPerUser > 0 && n >= this.settings.maxConnectionsPerUser) return false;
    this.perUser.set(user, n + 1);
    return true;
  }

  releaseUser(user: string): void {
    const n = (this.perUser.get(user) ?? 1) - 1;
    if (n <= 0) this.perUser.delete(user);
    else this.perUser.set(user, n);
  }

  get connections(): number {
    return this.total;
  }
}

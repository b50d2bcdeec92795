/**
 * A role one process of the cluster holds at a time (R-X17; issue 15: "one retention sweeper runs
 * at a time"): a row of `shared_leases` (migrations/002-shared.sql) naming its holder and when its
 * lease ends. `take` gets the role when nobody holds it or the holder's lease has lapsed, and the
 * holder renews it every third of `leaseSeconds` for as long as it lives, so the role stays with
 * one process; when that process dies, another takes it at its next `take` after at most
 * `leaseSeconds`. A holder that could not renew in time (the database unreachable) finds the
 * role taken at its next renewal and stops.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Sql } from './client.js';

export class ClusterLease {
  readonly holder = randomUUID();
  private readonly node = `${hostname()}:${process.pid}`;
  private renewer: NodeJS.Timeout | undefined;
  private held = false;

  constructor(private readonly sql: Sql, readonly name: string, private readonly leaseSeconds: number) {}

  /** True when this process holds the role now (taken or renewed); false when another does or the database fails. */
  async take(): Promise<boolean> {
    const rows = await this.sql`
      INSERT INTO shared_leases AS l (name, holder, node, expires_at)
      VALUES (${this.name}, ${this.holder}, ${this.node}, now() + make_interval(secs => ${this.leaseSeconds}))
      ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, node = excluded.node, expires_at = excluded.expires_at
      WHERE l.holder = excluded.holder OR l.expires_at < now()
      RETURNING 1`.catch(() => []);
    this.held = rows.length > 0;
    if (this.held && this.renewer === undefined) {
      this.renewer = setInterval(() => void this.take(), (this.leaseSeconds * 1000) / 3);
      this.renewer.unref();
    } else if (!this.held && this.renewer !== undefined) {
      clearInterval(this.renewer);
      this.renewer = undefined;
    }
    return this.held;
  }

  /** Gives the role up (a clean stop): another process may take it at once. */
  async release(): Promise<void> {
    if (this.renewer !== undefined) clearInterval(this.renewer);
    this.renewer = undefined;
    if (!this.held) return;
    this.held = false;
    await this.sql`DELETE FROM shared_leases WHERE name = ${this.name} AND holder = ${this.holder}`.catch(() => undefined);
  }
}

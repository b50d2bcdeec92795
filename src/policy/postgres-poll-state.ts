/**
 * R-X10's poll state in PostgreSQL (R-X17): the table `poll_state` (migrations/100-directory.sql),
 * one row per maildrop, shared by every node, so LOGIN-DELAY and the daily download cap hold for
 * the cluster, not per node.
 *
 * - A login is claimed by one statement (an upsert whose condition is checked on the locked row):
 *   of two logins racing each other on any nodes, one is admitted. It is durable once claimed;
 *   a cancelled login puts the previous time back unless another login came since.
 * - Octets are counted in this process as they are sent (so this node's other sessions see them
 *   at once) and added to the row when the reply ends, as an increment: counts from every node
 *   add up. A count whose write failed stays in this process and goes with the next write.
 * - Unlike the file (which fails open), a read that fails rejects: the login or the RETR gets
 *   `-ERR [SYS/TEMP]` (UnavailableError); never a login without the check.
 */
import type { Sql } from 'postgres';
import { UnavailableError } from '../errors.js';
import type { LoginClaim, PollStore } from './poll-state.js';

function unavailable(err: unknown): UnavailableError {
  return new UnavailableError('the poll state (PostgreSQL)', err);
}

export class PostgresPollState implements PollStore {
  /** Octets counted and not yet written: maildrop → UTC day → octets. */
  private readonly unsaved = new Map<string, Map<string, number>>();
  private readonly writes = new Set<Promise<void>>();

  constructor(private readonly sql: Sql) {}

  async claimLogin(mailbox: string, now: number, delayMs: number): Promise<LoginClaim> {
    let row: { previous: number | null; admitted: boolean } | undefined;
    try {
      [row] = await this.sql<Array<{ previous: number | null; admitted: boolean }>>`
        WITH old AS (SELECT last_login FROM poll_state WHERE mailbox = ${mailbox}),
             claim AS (
               INSERT INTO poll_state AS p (mailbox, last_login) VALUES (${mailbox}, ${now})
               ON CONFLICT (mailbox) DO UPDATE SET last_login = EXCLUDED.last_login
                WHERE p.last_login IS NULL OR p.last_login >= ${now + delayMs} OR p.last_login <= ${now - delayMs}
               RETURNING 1)
        SELECT (SELECT last_login FROM old) AS previous, EXISTS (SELECT 1 FROM claim) AS admitted`;
    } catch (err) {
      throw unavailable(err);
    }
    const previous = row?.previous ?? undefined;
    if (row?.admitted === true) return { admitted: true, previous };
    // Refused: another login holds the row; `previous` is at worst one login older than it.
    return { admitted: false, previous: previous ?? now };
  }

  async confirmLogin(): Promise<void> {}

  cancelLogin(mailbox: string, claimed: number, previous: number | undefined): Promise<void> {
    return this.track(
      this.sql`UPDATE poll_state SET last_login = ${previous ?? null} WHERE mailbox = ${mailbox} AND last_login = ${claimed}`
        .then(() => undefined, (err: unknown) => Promise.reject(unavailable(err))),
    );
  }

  /** Keeps `write` for flush() until it settles. */
  private track(write: Promise<void>): Promise<void> {
    const tracked = write.finally(() => this.writes.delete(tracked));
    this.writes.add(tracked);
    return tracked;
  }

  async downloaded(mailbox: string, day: string): Promise<number> {
    let rows: Array<{ octets: number }>;
    try {
      rows = await this.sql<Array<{ octets: number }>>`SELECT octets FROM poll_state WHERE mailbox = ${mailbox} AND day = ${day}`;
    } catch (err) {
      throw unavailable(err);
    }
    return (rows[0]?.octets ?? 0) + (this.unsaved.get(mailbox)?.get(day) ?? 0);
  }

  countDownload(mailbox: string, day: string, octets: number): void {
    let days = this.unsaved.get(mailbox);
    if (days === undefined) this.unsaved.set(mailbox, (days = new Map()));
    days.set(day, (days.get(day) ?? 0) + octets);
  }

  saveDownload(mailbox: string): Promise<void> {
    const days = this.unsaved.get(mailbox);
    if (days === undefined) return Promise.resolve();
    this.unsaved.delete(mailbox);
    return this.track(this.write(mailbox, days));
  }

  /** Adds each day's count to the row; a later day's count replaces an earlier day's. */
  private async write(mailbox: string, days: Map<string, number>): Promise<void> {
    const order = [...days].sort(([a], [b]) => (a < b ? -1 : 1));
    try {
      for (const [day, octets] of order) {
        await this.sql`
          INSERT INTO poll_state AS p (mailbox, day, octets) VALUES (${mailbox}, ${day}, ${octets})
          ON CONFLICT (mailbox) DO UPDATE SET
            octets = CASE WHEN p.day = EXCLUDED.day THEN p.octets + EXCLUDED.octets
                          WHEN p.day > EXCLUDED.day THEN p.octets
                          ELSE EXCLUDED.octets END,
            day = GREATEST(p.day, EXCLUDED.day)`;
        days.delete(day);
      }
    } catch (err) {
      // What was not written is counted again here, and goes with the next write.
      for (const [day, octets] of days) this.countDownload(mailbox, day, octets);
      throw unavailable(err);
    }
  }

  async flush(): Promise<void> {
    while (this.writes.size > 0) await Promise.all([...this.writes].map((w) => w.catch(() => undefined)));
  }
}

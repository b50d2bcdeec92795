/**
 * Retention (R-S18, R-X10): removes messages older than the maildrop's policy allows, separately
 * for retrieved (Maildir `S` flag, set when a session RETRs a message) and never-retrieved mail,
 * RFC 1939 §8's example being 7 and 60 days. Age counts from the message's arrival (RFC 2449
 * §6.7 leaves the starting point to the server), so CAPA EXPIRE shows the smaller of the two.
 *
 * The sweeper runs on a schedule inside `poplar serve` and on demand (`poplar expire`). The store
 * removes nothing from a maildrop that a session has open (MailStore.expire); such a maildrop is
 * swept on a later run. Every removal is logged: one line per maildrop with the uids removed.
 */
import type { Logger } from '../observability/logger.js';
import type { ExpiryCandidate, MailStore } from '../storage/mail-store.js';
import type { EffectivePolicy, UserPolicies } from './user-policy.js';

const DAY_MS = 24 * 60 * 60 * 1000;

export type RetentionRule = Pick<EffectivePolicy, 'retrievedDays' | 'unretrievedDays'>;

/**
 * Picks the messages `rule` says have expired at `now` (ms since the epoch). R-X12: a message
 * hidden by DELE in `hide` mode counts as retrieved, so it is removed after the retrieved age.
 */
export function expiredAt(rule: RetentionRule, now: number): (m: ExpiryCandidate) => boolean {
  return (m) => {
    const days = m.seen || m.hidden ? rule.retrievedDays : rule.unretrievedDays;
    return days > 0 && now - m.received >= days * DAY_MS;
  };
}

export interface MaildropSweep {
  readonly mailbox: string;
  readonly inUse: boolean;
  readonly removed: readonly ExpiryCandidate[];
}

export interface SweeperOptions {
  readonly store: MailStore;
  readonly policies: UserPolicies;
  /** The maildrops to look at (users and the mailboxes granted to them). */
  readonly mailboxes: () => Promise<readonly string[]>;
  readonly logger: Logger;
  /** The clock, in ms since the epoch (tests move it; nothing here sleeps). */
  readonly now?: () => number;
  /**
   * R-X17: with several nodes on one database, the role of scheduled sweeper (pg-lease.ts): a run
   * starts only while `take` says this process holds it; `release` at stop. Default: always this one.
   */
  readonly lease?: SweepLease;
}

/** The scheduled sweeper's role across processes (storage/postgres/pg-lease.ts ClusterLease). */
export interface SweepLease {
  take(): Promise<boolean>;
  release(): Promise<void>;
}

export class RetentionSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(private readonly opts: SweeperOptions) {}

  /**
   * Sweeps every maildrop (or `only` these) once; with dryRun, reports what would be removed and
   * removes nothing. Maildrops without a retention policy are not looked at and not reported.
   */
  async sweep(options: { dryRun?: boolean; only?: readonly string[] } = {}): Promise<MaildropSweep[]> {
    const { store, policies, logger } = this.opts;
    const now = (this.opts.now ?? Date.now)();
    const dryRun = options.dryRun === true;
    const results: MaildropSweep[] = [];
    for (const mailbox of options.only ?? (await this.opts.mailboxes())) {
      try {
        const rule = await policies.get(mailbox);
        if (rule.retrievedDays === 0 && rule.unretrievedDays === 0) continue;
        const r = await store.expire(mailbox, expiredAt(rule, now), { dryRun });
        results.push({ mailbox, ...r });
        if (r.inUse) logger.info({ event: 'expire_skipped', mailbox, reason: 'in use' }, 'maildrop in use, not swept');
        if (r.removed.length > 0) {
          logger.info(
            {
              event: dryRun ? 'expire_dry_run' : 'expired', mailbox, count: r.removed.length,
              bytes: r.removed.reduce((n, m) => n + m.size, 0),
              uids: r.removed.map((m) => m.uid), uidls: r.removed.map((m) => m.uidl ?? String(m.uid)),
              retrievedDays: rule.retrievedDays, unretrievedDays: rule.unretrievedDays,
            },
            dryRun ? 'would expire messages' : 'expired messages',
          );
        }
      } catch (err) {
        logger.error({ err, event: 'expire_failed', mailbox }, 'retention sweep of a maildrop failed');
      }
    }
    return results;
  }

  /** Sweeps every `intervalMs` (unref'd timer); a run never overlaps the previous one. */
  start(intervalMs: number): void {
    if (intervalMs <= 0) return;
    this.timer = setInterval(() => {
      if (this.running !== undefined) return;
      this.running = this.scheduled().finally(() => (this.running = undefined));
    }, intervalMs);
    this.timer.unref();
  }

  /** One scheduled run, if this process holds the sweeper's role; logged with what it did. */
  private async scheduled(): Promise<void> {
    if (this.opts.lease !== undefined && !(await this.opts.lease.take())) return;
    const results = await this.sweep();
    this.opts.logger.info(
      { event: 'retention_swept', maildrops: results.length, removed: results.reduce((n, r) => n + r.removed.length, 0) },
      'retention sweep done',
    );
  }

  /** Stops the schedule, waits for a run in progress and gives up the sweeper's role. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.running;
    await this.opts.lease?.release();
  }
}

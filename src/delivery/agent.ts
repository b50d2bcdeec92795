/**
 * The delivery agent shared by the LMTP listener and `poplar deliver` (R-X6): finds the maildrop
 * of a recipient, adds the trace headers and calls MailStore.deliver, which resolves only once the
 * message is durable and visible whole. It knows neither LMTP nor exit codes: it answers with
 * values the callers turn into replies.
 *
 * Quotas (R-S16) are checked by the store inside its commit (DeliverOptions.quota), where every
 * process's and node's deliveries to one maildrop are serialised, so they hold across workers and
 * nodes. The warning of a threshold crossed (R-S17) is made by the agent from the usage before and
 * after the message, which the store passes to it inside the same commit (QuotaLimit.warn), and
 * stored in that commit: exactly once per crossing, and counted by the next check. RCPT time
 * (`admit`) only refuses a maildrop already full, from a measured (or briefly cached) usage.
 */
import { channels } from '../observability/channels.js';
import { randomBytes } from 'node:crypto';
import type { UserDirectory } from '../auth/directory.js';
import type { Logger } from '../observability/logger.js';
import { crossedThreshold, exceedsQuota, quotaWarning, type QuotaLimits } from '../policy/quota.js';
import type { UserPolicies } from '../policy/user-policy.js';
import { crlfSize } from '../protocol/crlf.js';
import { StorageError } from '../errors.js';
import { isValidMailboxName, type MailStore, type Usage } from '../storage/mail-store.js';
import { traceHeaders, type Envelope } from './headers.js';

export type { Envelope } from './headers.js';

/**
 * How long a measured usage is trusted to admit a message at RCPT time. Measuring lists the
 * maildrop (O(messages)); within this window deliveries by this process update the figure. A
 * stale figure is never trusted to refuse: a refusal always measures again. Admitting at RCPT is
 * not the quota check (the store's commit is), so a stale figure only lets a DATA be refused.
 */
const USAGE_TRUST_MS = 1000;
const USAGE_CACHE_MAX = 1024;

export type Refusal =
  | { readonly kind: 'no-such-user' }
  /** `temporary` follows `quota.over_quota`: defer (retry later) or reject (bounce). */
  | { readonly kind: 'over-quota'; readonly temporary: boolean }
  /** The store failed (disk full, I/O error): always temporary. */
  | { readonly kind: 'failed'; readonly error: unknown };

export type DeliveryOutcome =
  | { readonly ok: true; readonly uid: number; readonly size: number; readonly id: string }
  | { readonly ok: false; readonly refusal: Refusal };

export interface DeliveryAgentOptions {
  readonly store: MailStore;
  readonly directory: UserDirectory;
  readonly policies: UserPolicies;
  readonly logger: Logger;
  /** Our host name, for the Received line and warning messages. */
  readonly hostname: string;
  readonly overQuota: 'reject' | 'defer';
  readonly warnPercent: readonly number[];
  /** `+` maps `user+detail@…` to `user`; `''` turns that off. */
  readonly recipientDelimiter: string;
  readonly now?: () => Date;
}

export class DeliveryAgent {
  /** Last measured usage per maildrop, kept up to date by our own deliveries (see USAGE_TRUST_MS). */
  private readonly usageCache = new Map<string, { usage: Usage; measuredAt: number }>();

  constructor(private readonly opts: DeliveryAgentOptions) {}

  /**
   * The maildrop of a recipient address (`user`, `user@domain`, `user+detail@domain`), if any: a
   * directory with mail addresses (LDAP `mail_attribute`) is asked for the address first (then
   * without its `+detail`), then every directory for the user names, in that order (one request
   * for all of them where the directory has lookupFirst). A directory that cannot answer throws
   * (a temporary refusal, R-X19).
   */
  async resolve(address: string): Promise<string | undefined> {
    const at = address.lastIndexOf('@');
    const local = at < 0 ? address : address.slice(0, at);
    const candidates = [address, local, local.toLowerCase()];
    const addresses = at < 0 ? [] : [address];
    const d = this.opts.recipientDelimiter;
    if (d !== '' && local.includes(d)) {
      const base = local.slice(0, local.indexOf(d));
      candidates.push(base, base.toLowerCase());
      if (at >= 0) addresses.push(base + address.slice(at));
    }
    const { directory } = this.opts;
    if (directory.lookupAddress !== undefined) {
      for (const a of addresses) {
        const record = await directory.lookupAddress(a);
        if (record !== undefined) return record.maildrop ?? record.name;
      }
    }
    const names = [...new Set(candidates)].filter((name) => name !== '' && isValidMailboxName(name));
    if (directory.lookupFirst !== undefined) {
      const record = names.length === 0 ? undefined : await directory.lookupFirst(names);
      return record === undefined ? undefined : record.maildrop ?? record.name;
    }
    for (const name of names) {
      const record = await directory.lookup(name);
      if (record !== undefined) return record.maildrop ?? record.name;
    }
    return undefined;
  }

  /** RCPT-time check: refuses a maildrop already full, or too full for a declared SIZE. */
  async admit(mailbox: string, declaredSize = 0): Promise<Refusal | undefined> {
    try {
      const limits = await this.opts.policies.get(mailbox);
      if (limits.quotaBytes === 0 && limits.quotaMessages === 0) return undefined;
      const { over } = await this.measure(mailbox, { messages: 1, bytes: declaredSize }, limits);
      return over ? this.overQuota() : undefined;
    } catch (error) {
      return { kind: 'failed', error };
    }
  }

  /**
   * Delivers `message` (as received, without our trace headers) to `mailbox`. Deliveries to one
   * maildrop run together, with or without a quota: the store checks the quota in its commit and
   * commits them in batches (maildir-commit.ts).
   */
  async deliver(mailbox: string, message: Buffer, envelope: Envelope): Promise<DeliveryOutcome> {
    const { store, policies, logger } = this.opts;
    const now = (this.opts.now ?? (() => new Date()))();
    const id = randomBytes(6).toString('hex');
    const trace = traceHeaders(envelope, { id, host: this.opts.hostname, now }, message);
    const full = Buffer.concat([trace, message]);
    const log = { mailbox, id, from: envelope.sender, protocol: envelope.protocol };
    const started = process.hrtime.bigint();
    const publish = (result: 'delivered' | 'rejected' | 'failed', bytes: number): void =>
      channels.delivery.publish({ result, bytes, seconds: Number(process.hrtime.bigint() - started) / 1e9 });
    try {
      const limits = await policies.get(mailbox);
      let threshold: number | undefined;
      const warn = (before: Usage, after: Usage): Buffer | undefined => {
        threshold = crossedThreshold(before, after, limits, this.opts.warnPercent);
        return threshold === undefined ? undefined : quotaWarning(mailbox, this.opts.hostname, threshold, after, limits, now);
      };
      const quota = isLimited(limits)
        ? { bytes: limits.quotaBytes, messages: limits.quotaMessages, ...(this.opts.warnPercent.length === 0 ? {} : { warn }) }
        : undefined;
      let stored;
      try {
        // R-X18: the trace headers are this recipient's; the message after them may be stored once.
        stored = await store.deliver(mailbox, full, { bodyOffset: trace.length, ...(quota === undefined ? {} : { quota }) });
      } catch (err) {
        if (!(err instanceof StorageError && err.code === 'OVER_QUOTA')) throw err;
        logger.info({ ...log, event: 'delivery_refused', reason: 'over quota', size: crlfSize(full) }, 'over quota');
        publish('rejected', 0);
        this.usageCache.delete(mailbox); // the next RCPT measures again
        return { ok: false, refusal: this.overQuota() };
      }
      logger.info({ ...log, event: 'delivered', uid: stored.uid, size: stored.size }, 'delivered');
      publish('delivered', stored.size);
      if (stored.usage !== undefined) {
        let { after } = stored.usage;
        if (stored.warning !== undefined) {
          after = { messages: after.messages + 1, bytes: after.bytes + stored.warning.size };
          logger.info({ mailbox, event: 'quota_warning', threshold, uid: stored.warning.uid, ...after }, 'quota warning');
        }
        const cached = this.usageCache.get(mailbox);
        if (cached !== undefined) this.usageCache.set(mailbox, { usage: after, measuredAt: cached.measuredAt });
      }
      return { ok: true, uid: stored.uid, size: stored.size, id };
    } catch (error) {
      logger.error({ ...log, err: error, event: 'delivery_failed' }, 'delivery failed');
      publish('failed', 0);
      return { ok: false, refusal: { kind: 'failed', error } };
    }
  }

  /** Usage, and whether adding `add` goes over quota; a cached figure only ever admits. */
  private async measure(mailbox: string, add: Usage, limits: QuotaLimits): Promise<{ usage: Usage; over: boolean }> {
    const cached = this.usageCache.get(mailbox);
    const now = Date.now();
    if (cached !== undefined && now - cached.measuredAt < USAGE_TRUST_MS && !exceedsQuota(cached.usage, add, limits)) {
      return { usage: cached.usage, over: false };
    }
    const usage = await this.opts.store.usage(mailbox);
    if (this.usageCache.size >= USAGE_CACHE_MAX) {
      for (const [key, c] of this.usageCache) if (now - c.measuredAt >= USAGE_TRUST_MS) this.usageCache.delete(key);
    }
    if (this.usageCache.size < USAGE_CACHE_MAX) this.usageCache.set(mailbox, { usage, measuredAt: now });
    return { usage, over: exceedsQuota(usage, add, limits) };
  }

  private overQuota(): Refusal {
    return { kind: 'over-quota', temporary: this.opts.overQuota === 'defer' };
  }
}

function isLimited(limits: QuotaLimits): boolean {
  return limits.quotaBytes > 0 || limits.quotaMessages > 0;
}

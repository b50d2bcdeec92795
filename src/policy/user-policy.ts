/**
 * Per-user policy (R-S16 quotas, R-S18 retention, R-X10 poll and download policy): the server-wide
 * defaults of the config file, overridden per user by what the admin tools write (`poplar quota
 * set`, `poplar retention set`) into an OverrideStore: the TOML file `policy.users_file`
 * (policy-file.ts) or, with `auth.directory = "postgres"`, a table (postgres-user-policy.ts).
 * Either is read again when it changes, so a running server sees changes at once (R-S20).
 */
import { PolicyFile } from './policy-file.js';
import type { OverrideKey, OverrideStore, UserOverrides } from './overrides.js';

/** One user's effective policy: 0 means unlimited / keep forever / not advertised. */
export interface EffectivePolicy {
  readonly quotaBytes: number;
  readonly quotaMessages: number;
  readonly retrievedDays: number;
  readonly unretrievedDays: number;
  readonly loginDelay: number;
  /** R-X10: octets RETR/TOP may send from the maildrop per UTC day; 0 is unlimited. */
  readonly downloadBytesPerDay: number;
}

/** What CAPA shows after login (RFC 2449 §6.5, §6.7) and what is enforced; implemented by UserPolicies. */
export interface PollPolicy {
  /** Capability lines for `mailbox` (after login), or the server-wide ones (before login). */
  capabilities(mailbox: string | undefined): Promise<string[]>;
  /** The effective policy of one maildrop (R-X10: login delay and daily download cap enforced). */
  get(mailbox: string): Promise<EffectivePolicy>;
}

/**
 * RFC 2449 §6.7: EXPIRE is the minimum number of days the server keeps a message (counted here
 * from its arrival, which §6.7 leaves to the server), and NEVER asserts that the server deletes
 * nothing, so it is shown only when neither retrieved nor unretrieved mail ever expires.
 */
export function expireValue(p: Pick<EffectivePolicy, 'retrievedDays' | 'unretrievedDays'>): string {
  const limits = [p.retrievedDays, p.unretrievedDays].filter((d) => d > 0);
  return limits.length === 0 ? 'NEVER' : String(Math.min(...limits));
}

export class UserPolicies implements PollPolicy {
  readonly store: OverrideStore;

  /**
   * `source`: a policy file's path, or another store (PostgreSQL). `directoryQuota`: a maildrop's
   * quota in octets from the user directory (LDAP `quota_attribute`), used where the overrides set
   * none, before the default.
   */
  constructor(
    source: string | OverrideStore,
    private defaults: EffectivePolicy,
    private readonly directoryQuota?: (mailbox: string) => number | undefined,
  ) {
    this.store = typeof source === 'string' ? new PolicyFile(source) : source;
  }

  /** New defaults after a configuration reload. */
  setDefaults(defaults: EffectivePolicy): void {
    this.defaults = defaults;
  }

  async get(user: string): Promise<EffectivePolicy> {
    const o = (await this.store.get(user)) ?? {};
    const d = this.defaults;
    return {
      quotaBytes: o.quota_bytes ?? this.directoryQuota?.(user) ?? d.quotaBytes,
      quotaMessages: o.quota_messages ?? d.quotaMessages,
      retrievedDays: o.retrieved_days ?? d.retrievedDays,
      unretrievedDays: o.unretrieved_days ?? d.unretrievedDays,
      loginDelay: o.login_delay ?? d.loginDelay,
      downloadBytesPerDay: o.download_bytes_per_day ?? d.downloadBytesPerDay,
    };
  }

  async capabilities(mailbox: string | undefined): Promise<string[]> {
    if (mailbox !== undefined) {
      const p = await this.get(mailbox);
      const caps = [`EXPIRE ${expireValue(p)}`];
      if (p.loginDelay > 0) caps.push(`LOGIN-DELAY ${p.loginDelay}`);
      return caps;
    }
    // Before login: the server default, with USER when some user's value differs (§6.5, §6.7).
    const varies = await this.store.varies();
    const caps = [`EXPIRE ${expireValue(this.defaults)}${varies.expire ? ' USER' : ''}`];
    const delayVaries = varies.loginDelay ? ' USER' : '';
    if (this.defaults.loginDelay > 0 || delayVaries) caps.push(`LOGIN-DELAY ${this.defaults.loginDelay}${delayVaries}`);
    return caps;
  }

  /** Sets (a number) or removes (null) override keys of one user (OverrideStore.update). */
  update(user: string, changes: Partial<Record<OverrideKey, number | null>>): Promise<UserOverrides> {
    return this.store.update(user, changes);
  }
}

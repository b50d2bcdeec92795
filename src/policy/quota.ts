/**
 * Quotas (R-S16) and their warnings (R-S17). A maildrop's usage is its message count and the
 * sum of its exact sizes (R-S4), what STAT shows. A delivery is refused when the maildrop would
 * go over either limit; one that takes the maildrop across a warning threshold puts exactly one
 * warning message in it (the highest threshold crossed), so a user gets one warning per crossing,
 * not one per delivery. Warning messages themselves are never refused.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Usage } from '../storage/mail-store.js';
import type { EffectivePolicy } from './user-policy.js';

export type QuotaLimits = Pick<EffectivePolicy, 'quotaBytes' | 'quotaMessages'>;

/** Whether adding `add` to `usage` goes over a limit (0 = unlimited). */
export function exceedsQuota(usage: Usage, add: Usage, limits: QuotaLimits): boolean {
  return (
    (limits.quotaBytes > 0 && usage.bytes + add.bytes > limits.quotaBytes) ||
    (limits.quotaMessages > 0 && usage.messages + add.messages > limits.quotaMessages)
  );
}

/** How full the maildrop is, in percent of the fuller limit; 0 without limits. */
export function fullness(usage: Usage, limits: QuotaLimits): number {
  const bytes = limits.quotaBytes > 0 ? (usage.bytes * 100) / limits.quotaBytes : 0;
  const messages = limits.quotaMessages > 0 ? (usage.messages * 100) / limits.quotaMessages : 0;
  return Math.max(bytes, messages);
}

/** The highest threshold that `before` was under and `after` reaches, if any. */
export function crossedThreshold(before: Usage, after: Usage, limits: QuotaLimits, thresholds: readonly number[]): number | undefined {
  const from = fullness(before, limits);
  const to = fullness(after, limits);
  const crossed = thresholds.filter((t) => from < t && to >= t);
  return crossed.length === 0 ? undefined : Math.max(...crossed);
}

/** The warning put into the maildrop (RFC 5322, CRLF line ends). */
export function quotaWarning(user: string, host: string, threshold: number, usage: Usage, limits: QuotaLimits, now: Date): Buffer {
  const parts: string[] = [];
  if (limits.quotaBytes > 0) parts.push(`${usage.bytes} of ${limits.quotaBytes} octets`);
  if (limits.quotaMessages > 0) parts.push(`${usage.messages} of ${limits.quotaMessages} messages`);
  return Buffer.from(
    [
      `From: Mail Delivery System <postmaster@${host}>`,
      `To: ${user}@${host}`,
      `Subject: Your mailbox is ${threshold}% full`,
      `Date: ${rfc5322Date(now)}`,
      `Message-ID: <${randomBytes(8).toString('hex')}.quota@${host}>`,
      'Auto-Submitted: auto-generated',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=us-ascii',
      '',
      `Your mailbox now holds ${parts.join(' and ')} (${threshold}% or more of your quota).`,
      'When it is full, new mail to you will be refused.',
      'Please delete messages you no longer need, or ask your administrator for a larger quota.',
      '',
    ].join('\r\n'),
  );
}

/** RFC 5322 §3.3 date-time in UTC, e.g. `Sun, 22 Nov 2026 00:46:23 +0000`. */
export function rfc5322Date(d: Date): string {
  return d.toUTCString().replace(/GMT$/, '+0000');
}

/**
 * Parses a size in octets: digits, optionally followed by K, M or G (powers of 1024, any case,
 * optionally with `B` or `iB`: `20M`, `20MB`, `20MiB` are 20971520), or a bare `B`. The one
 * reading of sizes, for `poplar quota set` and for the config and policy files (byteSize).
 */
export function parseSize(text: string): number | undefined {
  const m = /^(\d{1,15})\s*(?:([KMG])(?:i?B)?|B)?$/i.exec(text.trim());
  if (m === null) return undefined;
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(m[2] ?? '').toUpperCase() as '' | 'K' | 'M' | 'G'];
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n) ? n : undefined;
}

export const SIZE_HINT = 'a size in octets, or a number with K, M or G (powers of 1024), e.g. "100M"';

/**
 * A schema for a size in octets written as a number or as a string parseSize reads: TOML
 * `quota.bytes = "100M"` means what `poplar quota set --bytes 100M` means. `octets` checks the
 * number (range, default) and is what JSON Schema and docs/configuration.md show.
 */
export function byteSize<T extends z.ZodType<number | undefined>>(octets: T): z.ZodPreprocess<T> {
  return z.preprocess((value, ctx) => {
    if (typeof value !== 'string') return value;
    const n = parseSize(value);
    if (n !== undefined) return n;
    ctx.addIssue({ code: 'custom', message: `expected ${SIZE_HINT} (got ${JSON.stringify(value)})` });
    return z.NEVER;
  }, octets);
}

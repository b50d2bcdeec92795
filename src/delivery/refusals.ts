/**
 * Refused deliveries as a metric (R-X13, R-X6): `poplar_deliveries_refused_total{protocol, reason}`.
 * The reasons are a closed set, so the label stays small:
 *
 *   unknown_user   no maildrop for the recipient (LMTP 550 5.1.1, `poplar deliver` exit 67)
 *   over_quota     the maildrop is full, whether that bounces or defers (552 5.2.2 / 452 4.2.2, exit 73/75)
 *   too_big        larger than `lmtp.max_message_size` (552 5.3.4, exit 73)
 *   temp_failure   the directory or the store failed (451 4.3.0, exit 75)
 *
 * The LMTP listener publishes on `channels.deliveryRefused` in the server process. `poplar deliver`
 * is a process of its own that ends after one message, so it records each refusal by appending
 * one octet to `{data_dir}/delivery-refused/<reason>` (O_APPEND: concurrent processes never lose
 * one); the server takes a baseline of those sizes when it starts and, before each scrape,
 * publishes the growth since (RefusalTally). Removing the files is harmless: the counter then
 * counts from the new, smaller size.
 */
import { closeSync, constants, lstatSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { channels, DELIVERY_REFUSAL_REASONS, type DeliveryRefusedEvent } from '../observability/channels.js';
import type { Refusal } from './agent.js';

export type RefusalReason = DeliveryRefusedEvent['reason'];

export function reasonOf(r: Refusal): RefusalReason {
  switch (r.kind) {
    case 'no-such-user':
      return 'unknown_user';
    case 'over-quota':
      return 'over_quota';
    case 'failed':
      return 'temp_failure';
  }
}

export function publishRefusal(protocol: DeliveryRefusedEvent['protocol'], reason: RefusalReason, count = 1): void {
  channels.deliveryRefused.publish({ protocol, reason, count });
}

/** Where `poplar deliver` records its refusals. */
export function refusalTallyDir(dataDir: string): string {
  return join(dataDir, 'delivery-refused');
}

/**
 * Records one refusal by `poplar deliver`: one octet appended to `<dir>/<reason>`. Never follows
 * a symlink. Throws on an I/O error; the caller logs it and exits as it would have anyway.
 */
export function recordRefusal(dir: string, reason: RefusalReason): void {
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  const fd = openSync(join(dir, reason), constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o640);
  try {
    writeSync(fd, '\n');
  } finally {
    closeSync(fd);
  }
}

/** The server's side: publishes what `poplar deliver` processes recorded since the last call. */
export class RefusalTally {
  private readonly seen = new Map<RefusalReason, number>();

  /** Takes the current sizes as the baseline: refusals recorded before the server started are not counted. */
  constructor(private readonly dir: string) {
    for (const reason of DELIVERY_REFUSAL_REASONS) this.seen.set(reason, this.size(reason));
  }

  /** Publishes `{protocol: 'deliver'}` events for the octets appended since the last call. */
  readonly publishNew = (): void => {
    for (const reason of DELIVERY_REFUSAL_REASONS) {
      const size = this.size(reason);
      const before = this.seen.get(reason) ?? 0;
      this.seen.set(reason, size);
      const added = size >= before ? size - before : size; // a smaller file was removed or truncated
      if (added > 0) publishRefusal('deliver', reason, added);
    }
  };

  private size(reason: RefusalReason): number {
    try {
      const st = lstatSync(join(this.dir, reason));
      return st.isFile() ? st.size : 0;
    } catch {
      return 0; // nothing recorded yet
    }
  }
}

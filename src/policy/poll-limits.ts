/**
 * R-X10 enforced: LOGIN-DELAY (RFC 2449 §6.5) and the optional daily download cap, per maildrop,
 * with the values CAPA advertises after login (the maildrop's policy: `policy.login_delay`,
 * `policy.download_bytes_per_day`, or the maildrop's override in the policy file).
 *
 * - A login to a maildrop sooner than its login delay after the previous successful login is
 *   refused with `-ERR [LOGIN-DELAY]`. That is not an authentication failure (the credential was
 *   right): the session stays in AUTHORIZATION and the refused attempt does not restart the wait.
 * - RETR and TOP are refused with `-ERR [SYS/TEMP]` once the octets they sent from the maildrop
 *   this UTC day have reached the cap. The check is made before a message starts, and a message
 *   that starts below the cap is sent whole: the day's total can pass the cap by less than one
 *   message (per concurrent session), and a message larger than the cap can still be fetched.
 *   Octets are counted as they are sent, so a transfer the client breaks off counts too.
 *
 * State lives in a PollStore (poll-state.ts: a file per maildrop, or PostgreSQL rows shared by
 * every node); the clock is injected.
 */
import { Pop3Error } from '../errors.js';
import type { EffectivePolicy } from './user-policy.js';
import type { PollStore } from './poll-state.js';

export type PollLimitValues = Pick<EffectivePolicy, 'loginDelay' | 'downloadBytesPerDay'>;

export interface PollLimitSource {
  get(mailbox: string): Promise<PollLimitValues>;
}

/** R-X10: today's download count of one maildrop, fed as a reply is sent. */
export interface DownloadMeter {
  /** Counts `octets` more sent (on the day they are sent); needs no `this`. */
  readonly add: (octets: number) => void;
  /** The reply ended (normally or not): the count is written back if anything was counted. */
  finish(): Promise<void>;
}

/** A login admitted by `admitLogin`: confirm once the maildrop is open, or cancel. */
export interface LoginTicket {
  /** Persists the login time (a failed write is reported to `onError`; the login stands). */
  confirm(): Promise<void>;
  /** The login did not happen after all (the maildrop could not be opened): forget it. */
  cancel(): void;
}

const NO_TICKET: LoginTicket = { confirm: async () => undefined, cancel: () => undefined };

/** The UTC day of `ms` as `YYYY-MM-DD`. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export class PollLimiter {
  private readonly policy: PollLimitSource;
  readonly state: PollStore;
  private readonly now: () => number;
  /** A record could not be written: the limits still hold in this process; say so. */
  private readonly onError: (err: unknown, mailbox: string) => void;

  constructor(opts: {
    policy: PollLimitSource;
    state: PollStore;
    now?: (() => number) | undefined;
    onError?: (err: unknown, mailbox: string) => void;
  }) {
    this.policy = opts.policy;
    this.state = opts.state;
    this.now = opts.now ?? Date.now;
    this.onError = opts.onError ?? (() => undefined);
  }

  /**
   * Admits a login to `mailbox` or throws `-ERR [LOGIN-DELAY]`. Admitting records the login time
   * at once (PollStore.claimLogin), so two logins racing each other cannot both pass. A maildrop
   * without a login delay is neither checked nor recorded (no write per login when the policy is off).
   */
  async admitLogin(mailbox: string): Promise<LoginTicket> {
    const { loginDelay } = await this.policy.get(mailbox);
    if (loginDelay <= 0) return NO_TICKET;
    const now = this.now();
    const claim = await this.state.claimLogin(mailbox, now, loginDelay * 1000);
    if (!claim.admitted) {
      const wait = Math.min(loginDelay, Math.max(1, Math.ceil((loginDelay * 1000 - (now - claim.previous)) / 1000)));
      throw new Pop3Error(
        'LOGIN_DELAY',
        `Minimum time between logins is ${loginDelay} seconds, try again in ${wait} second${wait === 1 ? '' : 's'}`,
        { responseCode: 'LOGIN-DELAY' },
      );
    }
    return {
      confirm: () => this.state.confirmLogin(mailbox).catch((err: unknown) => this.onError(err, mailbox)),
      cancel: () => void this.state.cancelLogin(mailbox, now, claim.previous).catch((err: unknown) => this.onError(err, mailbox)),
    };
  }

  /**
   * Before RETR/TOP from `mailbox`: throws `-ERR [SYS/TEMP]` when today's download cap is spent;
   * otherwise returns the meter the reply's octets are counted on as they are sent, or undefined
   * for a maildrop without a cap (nothing is counted, or written).
   */
  async startDownload(mailbox: string): Promise<DownloadMeter | undefined> {
    const { downloadBytesPerDay: cap } = await this.policy.get(mailbox);
    if (cap <= 0) return undefined;
    if ((await this.state.downloaded(mailbox, utcDay(this.now()))) >= cap) {
      throw new Pop3Error('DOWNLOAD_LIMIT', 'Daily download limit reached, try again after 00:00 UTC', { responseCode: 'SYS/TEMP' });
    }
    let counted = false;
    return {
      add: (octets) => {
        this.state.countDownload(mailbox, utcDay(this.now()), octets);
        counted = true;
      },
      finish: async () => {
        if (counted) await this.state.saveDownload(mailbox).catch((err: unknown) => this.onError(err, mailbox));
      },
    };
  }
}

/**
 * Errors as values (DESIGN.md habit 5). A Pop3Error carries a stable code, the RFC 2449 / RFC 3206
 * response code shown in brackets, the text the client sees, and whether the session must end.
 * Exactly one function (protocol/response.ts `formatError`) turns it into an `-ERR` line.
 */

/** RFC 2449 §8 and RFC 3206 response codes. */
export type ResponseCode = 'IN-USE' | 'LOGIN-DELAY' | 'SYS/TEMP' | 'SYS/PERM' | 'AUTH' | 'UTF8';

/** Stable machine-readable codes; tests and logs branch on these, never on the text. */
export type Pop3ErrorCode =
  | 'UNKNOWN_COMMAND'
  | 'BAD_STATE'
  | 'BAD_SYNTAX'
  | 'LINE_TOO_LONG'
  | 'NO_SUCH_MESSAGE'
  | 'MESSAGE_DELETED'
  | 'MESSAGE_GONE'
  | 'AUTH_FAILED'
  | 'AUTH_ORDER'
  | 'MAILBOX_DENIED'
  | 'MAILBOX_IN_USE'
  | 'TOO_MANY_ERRORS'
  | 'DISABLED'
  | 'PLAINTEXT_DISALLOWED'
  | 'AUTH_CANCELLED'
  | 'TLS_UNAVAILABLE'
  | 'LOGIN_DELAY'
  | 'DOWNLOAD_LIMIT'
  | 'SHARED_STATE'
  | 'INTERNAL';

export class Pop3Error extends Error {
  readonly code: Pop3ErrorCode;
  readonly responseCode: ResponseCode | undefined;
  /** After the -ERR line is written, the session is closed (R-S10). */
  readonly disconnect: boolean;

  constructor(
    code: Pop3ErrorCode,
    text: string,
    opts: { responseCode?: ResponseCode; disconnect?: boolean; cause?: unknown } = {},
  ) {
    super(text, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'Pop3Error';
    this.code = code;
    this.responseCode = opts.responseCode;
    this.disconnect = opts.disconnect ?? false;
  }
}

/** Storage-level failures that are not POP3's business; commands translate them. */
export class StorageError extends Error {
  /** OVER_QUOTA: a delivery refused by DeliverOptions.quota (R-S16); nothing of it was kept. */
  readonly code: 'MESSAGE_GONE' | 'MAILBOX_LOCKED' | 'NO_SUCH_MAILBOX' | 'INVALID_NAME' | 'INVALID_UIDL' | 'OVER_QUOTA' | 'IO';
  constructor(code: StorageError['code'], message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'StorageError';
    this.code = code;
  }
}

/**
 * The user directory could not answer (an LDAP server down, slow or refusing the service bind):
 * nobody is let in or refused for it; logins get `-ERR [SYS/TEMP]`, LMTP recipients `451` (R-X19).
 */
export class DirectoryUnavailableError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'DirectoryUnavailableError';
  }
}

/**
 * R-X16: the shared state (counters, penalties, claims, the login cache; src/shared/) could not be
 * reached or did not answer in time. The caller fails closed: the client is told to come back.
 */
export class SharedStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SharedStateError';
  }
}

/** Configuration problems: every problem found, not just the first. */
export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * A backend that cannot answer now (a database down, refusing or timing out): a session gets
 * `-ERR [SYS/TEMP]` (toPop3Error's default), a command one line without a stack.
 */
export class UnavailableError extends Error {
  /** `what`: e.g. "the poll state (PostgreSQL)"; the message adds the first line of the cause's. */
  constructor(what: string, cause: unknown) {
    super(unavailableText(what, cause), { cause });
    this.name = 'UnavailableError';
  }
}

/** `<what> is unavailable: <first line of the cause's message>`. */
export function unavailableText(what: string, cause: unknown): string {
  const text = cause instanceof Error ? cause.message : String(cause);
  return `${what} is unavailable: ${text.split('\n')[0]}`;
}

/** Anything unexpected becomes `-ERR [SYS/TEMP]` and is logged with its stack (habit 5). */
export function toPop3Error(err: unknown): Pop3Error {
  if (err instanceof Pop3Error) return err;
  if (err instanceof StorageError) {
    switch (err.code) {
      case 'MESSAGE_GONE':
        return new Pop3Error('MESSAGE_GONE', 'Message was removed by another session', { cause: err });
      case 'MAILBOX_LOCKED':
        return new Pop3Error('MAILBOX_IN_USE', 'Mailbox is locked by another POP3 session', {
          responseCode: 'IN-USE',
          cause: err,
        });
      default:
        break;
    }
  }
  if (err instanceof DirectoryUnavailableError) {
    return new Pop3Error('INTERNAL', 'Directory unavailable, try again later', { responseCode: 'SYS/TEMP', cause: err });
  }
  if (err instanceof SharedStateError) {
    return new Pop3Error('SHARED_STATE', 'Server busy, try again later', { responseCode: 'SYS/TEMP', cause: err });
  }
  return new Pop3Error('INTERNAL', 'Internal server error, try again later', {
    responseCode: 'SYS/TEMP',
    cause: err,
  });
}

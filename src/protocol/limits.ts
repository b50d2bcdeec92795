/**
 * Every fixed size, count and time limit of the POP3 service, each with its reason (DESIGN.md
 * habit 6). Limits an admin may change live in config/schema.ts, which takes its defaults from
 * here. An explicit 0 is never silently replaced: callers use `??`, not `||`.
 */

/** R-S2: Exchange 2010+ default maximum command length in octets, CRLF included. */
export const DEFAULT_MAX_COMMAND_LENGTH = 512;
/** R-S2: Exchange's configurable range for the command length. */
export const MIN_MAX_COMMAND_LENGTH = 40;
export const MAX_MAX_COMMAND_LENGTH = 1024;

/** R-S6 / RFC 1939 §3: a response line is at most 512 octets including CRLF. */
export const MAX_RESPONSE_LINE = 512;

/** R-S8: Exchange's unauthenticated idle timer, seconds. */
export const DEFAULT_TIMEOUT_UNAUTHENTICATED_S = 60;
/** R-S8: Exchange's authenticated idle timer, seconds. */
export const DEFAULT_TIMEOUT_AUTHENTICATED_S = 1800;
/** R-S8 / RFC 1939 §3: an autologout timer MUST be at least 10 minutes once authenticated. */
export const MIN_TIMEOUT_AUTHENTICATED_S = 600;

/** R-S10: unknown or malformed commands tolerated before the server closes (Dovecot uses 20). */
export const DEFAULT_MAX_BAD_COMMANDS = 20;
/** R-S10: failed logins tolerated in one connection before it is closed. */
export const DEFAULT_MAX_AUTH_FAILURES = 3;

/** Largest message number or line count accepted; bigger numbers are "no such message". */
export const MAX_ARGUMENT_NUMBER = 2 ** 31 - 1;

/** The memory store hands out a stored message in chunks of this size, as a file read would. */
export const BODY_READ_CHUNK = 64 * 1024;

/**
 * RETR/TOP read a Maildir file this much at a time: each `read` and socket `write` call costs a
 * fixed amount whatever its size, so larger chunks mean fewer of them (docs/benchmarks.md,
 * "Figures behind code comments"); 256 KiB stays a small, bounded buffer per session (the
 * transform's output is at most twice it).
 */
export const RETR_READ_CHUNK = 256 * 1024;

/**
 * First-sight sizing (the CRLF size of a file poplar did not deliver, R-S4) reads this much at a
 * time: one buffer per reader, kept; those files are mostly small.
 */
export const SIZING_READ_CHUNK = 64 * 1024;

/**
 * LIST and UIDL write their lines into buffers of this size (commands/listing.ts), so a huge
 * maildrop costs no huge buffer; session/output.ts coalesces them into larger writes anyway.
 */
export const LISTING_CHUNK = 64 * 1024;

/**
 * Import reads this much of a message file to find a header field (X-UIDL, migrate/): a header
 * block is far smaller, and a field beyond this is not looked for.
 */
export const IMPORT_HEADER_READ = 64 * 1024;

/**
 * A streamed body is held corked until this much is pending (or it ends), then written in one
 * `writev`: a small message goes out as one write with its status line and terminator instead of
 * three, a large one in writes of about this size. Bounds what a session holds besides the socket.
 */
export const STREAM_COALESCE = 256 * 1024;

/**
 * RFC 5034 §4 / RFC 4422: longest SASL continuation line (base64 client response) in octets,
 * CRLF included. The command-length limit (R-S2) does not apply to these lines: an OAuth 2.0
 * bearer JWT with its signature and claims is routinely 1–4 KiB, and base64 adds a third. RFC
 * 2449 §4's 255 octets is the least a server must accept for a command; 16 KiB leaves room for
 * large tokens and NTLM messages while bounding memory per session.
 */
export const MAX_SASL_RESPONSE_LENGTH = 16 * 1024;

/**
 * R-X9: the failed-login delay (auth/throttle.ts). The first failure from an address or for a
 * user waits 2 s, each further one doubles it, up to 15 s (the "2 s doubling to 15 s";
 * Dovecot's auth_failure_delay is also 2 s). A guesser then gets about 4 tries a minute per
 * connection slot instead of thousands. Counters fade after 15 minutes without failures.
 */
export const DEFAULT_FAILURE_DELAY_MS = 2000;
export const DEFAULT_FAILURE_DELAY_MAX_MS = 15_000;
export const DEFAULT_FAILURE_WINDOW_S = 900;

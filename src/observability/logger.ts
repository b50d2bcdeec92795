/**
 * The one structured logger (pino). Secrets are redacted here, centrally (DESIGN.md habit 8):
 * whatever a caller passes under these keys is never written.
 */
import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';

export const REDACTED_KEYS = ['password', 'pass', 'secret', 'token', '*.password', '*.secret', '*.token'];

export function createLogger(level: LevelWithSilent, destination?: DestinationStream): Logger {
  const options = { level, base: { service: 'poplar' }, redact: { paths: REDACTED_KEYS, censor: '[redacted]' } };
  return destination === undefined ? pino(options) : pino(options, destination);
}

/** Log bytes `serve` may hold while stdout does not keep up; beyond it lines are dropped, not queued. */
export const SERVE_LOG_BUFFER = 16 * 1024 * 1024;

/**
 * The logger of `poplar serve`: stdout written asynchronously (pino's sonic-boom, `sync: false`),
 * so a session's log line costs no write(2) on the event loop and a slow reader of stdout (a full
 * journald pipe) never stalls every session; lines keep their order and are written within
 * moments. Bounded: past SERVE_LOG_BUFFER of unwritten lines, new ones are dropped. The price: a
 * SIGKILL loses the lines not yet written (a clean shutdown flushes them). The CLI's other
 * commands log synchronously to stderr (`createLogger(level, process.stderr)`).
 */
export function createServeLogger(level: LevelWithSilent): Logger {
  return createLogger(level, pino.destination({ dest: 1, sync: false, maxLength: SERVE_LOG_BUFFER }));
}

export type { Logger };

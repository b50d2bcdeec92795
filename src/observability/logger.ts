/**
 * The one structured logger (pino). Secrets are redacted here, centrally (DESIGN.md habit 8):
 * whatever a caller passes under these keys is never written. Control characters are escaped
 * here too, in every field (user names, SASL authzids, client ids, error messages): see
 * escapeControls.
 */
import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';

export const REDACTED_KEYS = ['password', 'pass', 'secret', 'token', '*.password', '*.secret', '*.token'];

/**
 * In one serialized JSON log line: JSON's own escapes of C0 controls other than tab and line feed
 * (`\u001b`, `\r`, `\b`, `\f`), and the raw characters JSON leaves as they are (DEL, C1 controls,
 * the bidi controls U+061C, U+200E/F, U+202A–U+202E, U+2066–U+2069, and U+2028/U+2029). An
 * escaped backslash (`\\`) is matched first so that a literal backslash in a value is left alone.
 */
const CONTROL = /\\\\|\\(?:u00(?:0[0-8bcef]|1[0-9a-f]|7f)|[bfr])|[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * Makes every control character in a log line visible text: a value holding U+202E is logged as
 * the six characters `\u202e` (written `\\u202e` in the JSON), ESC as `\u001b`, CR as `\r`. So
 * neither the raw line (a terminal, grep, fail2ban) nor the value a log viewer decodes can be
 * reordered or recoloured by what a client sent. Tab and line feed keep JSON's `\t`, `\n`
 * (stack traces), which no decoder turns into a raw character on the line.
 */
export function escapeControls(line: string): string {
  return line.replace(CONTROL, (m) => {
    if (m === '\\\\') return m;
    if (m.length === 1) return `\\\\u${m.charCodeAt(0).toString(16).padStart(4, '0')}`;
    return `\\${m}`;
  });
}

export function createLogger(level: LevelWithSilent, destination?: DestinationStream, base: Record<string, unknown> = {}): Logger {
  const options = {
    level,
    base: { service: 'poplar', ...base },
    redact: { paths: REDACTED_KEYS, censor: '[redacted]' },
    hooks: { streamWrite: escapeControls },
  };
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
 * commands log synchronously to stderr (`createLogger(level, process.stderr)`). With
 * `server.workers` > 1 each line carries `worker`: the worker's id, or `"primary"` (R-X16).
 */
export function createServeLogger(level: LevelWithSilent, worker?: number | 'primary'): Logger {
  // R-X16: with workers, every process writes to the same stdout. Writes of whole lines of at
  // most PIPE_BUF (4096) octets are atomic on a pipe, so lines of two processes never interleave.
  const destination = pino.destination({ dest: 1, sync: false, maxLength: SERVE_LOG_BUFFER, ...(worker === undefined ? {} : { maxWrite: PIPE_BUF }) });
  return createLogger(level, destination, worker === undefined ? {} : { worker });
}

/** Linux's PIPE_BUF: a write(2) to a pipe of at most this many octets is never split. */
const PIPE_BUF = 4096;

export type { Logger };

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

export type { Logger };

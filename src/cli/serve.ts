/** Placeholder so the CLI builds; the composition root replaces this file. */
import type { Config } from '../config/schema.js';
import { CliError } from './common.js';

export async function runServe(config: Config): Promise<void> {
  throw new CliError(`the server is not part of this build (would listen on ${config.pop3.listen.join(', ')})`);
}

/**
 * Where `poplar serve` keeps R-X10's poll state (last logins, today's downloads): the folder of
 * `policy.state_dir`, read at start (a reload that changes it needs a restart). The failed-login
 * delay of R-X9 comes with the reloadable operations options (serve-operations.ts).
 */
import type { Config } from '../config/schema.js';
import { PollState } from '../policy/poll-state.js';
import type { PoplarServerOptions } from '../server.js';

export function policyServerOptions(config: Config): Pick<PoplarServerOptions, 'pollState'> {
  return { pollState: new PollState(config.policy.state_dir) };
}

/**
 * The server options `poplar serve` derives from the config for R-X9's failed-login delay and
 * R-X10's enforced poll and download policy (kept apart from serve.ts, the composition root).
 */
import type { Config } from '../config/schema.js';
import { PollState } from '../policy/poll-state.js';
import type { PoplarServerOptions } from '../server.js';

export function policyServerOptions(config: Config): Pick<PoplarServerOptions, 'failureDelay' | 'pollState'> {
  return {
    failureDelay: {
      baseMs: config.auth.failure_delay,
      maxMs: config.auth.failure_delay_max,
      windowMs: config.auth.failure_window * 1000,
    },
    pollState: new PollState(config.policy.state_dir),
  };
}

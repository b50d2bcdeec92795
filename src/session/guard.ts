/**
 * The one place that decides whether a parsed command may run now (DESIGN.md habit 2): the
 * command must be enabled by the settings and allowed in the current state.
 */
import { Pop3Error } from '../errors.js';
import type { CommandSpec } from '../commands/types.js';
import type { SessionSettings } from './context.js';
import type { Phase } from './state.js';

export function guard(spec: CommandSpec, phase: Phase, settings: SessionSettings): Pop3Error | undefined {
  if (spec.enabled !== undefined && !spec.enabled(settings)) {
    return new Pop3Error('UNKNOWN_COMMAND', 'Unknown command');
  }
  if (!spec.states.includes(phase)) {
    return new Pop3Error(
      'BAD_STATE',
      phase === 'authorization' ? 'Not logged in, command not valid in this state' : 'Command not valid in this state',
    );
  }
  return undefined;
}

/**
 * A command is a table entry (DESIGN.md habit 2): the states it is allowed in, whether settings
 * enable it, and its handler. session/guard.ts is the one place that checks states; the factories
 * below hand each handler its state already narrowed, so no handler repeats a state check.
 */
import type { Command, CommandName } from '../protocol/command.js';
import type { CommandContext, CommandSpec, SessionSettings } from '../session/context.js';
import type { AuthorizationState, SessionState, TransactionState } from '../session/state.js';


export type CommandOf<N extends CommandName> = Extract<Command, { name: N }>;

type Handler<N extends CommandName, S extends SessionState> = (
  ctx: CommandContext,
  state: S,
  cmd: CommandOf<N>,
) => Promise<void> | void;

/** A command of the AUTHORIZATION state (RFC 1939 §4). */
export function authorization<N extends CommandName>(
  run: Handler<N, AuthorizationState>,
  opts: { plaintext?: boolean; enabled?: (settings: SessionSettings) => boolean } = {},
): CommandSpec {
  return { states: ['authorization'], ...opts, run: (ctx, cmd) => run(ctx, ctx.state as AuthorizationState, cmd as CommandOf<N>) };
}

/** A command of the TRANSACTION state (RFC 1939 §5). */
export function transaction<N extends CommandName>(
  run: Handler<N, TransactionState>,
  enabled?: (settings: SessionSettings) => boolean,
): CommandSpec {
  const spec: CommandSpec = {
    states: ['transaction'],
    run: (ctx, cmd) => run(ctx, ctx.state as TransactionState, cmd as CommandOf<N>),
  };
  return enabled === undefined ? spec : { ...spec, enabled };
}

/** A command valid in both AUTHORIZATION and TRANSACTION (CAPA, QUIT). */
export function anyState<N extends CommandName>(run: Handler<N, SessionState>): CommandSpec {
  return { states: ['authorization', 'transaction'], run: (ctx, cmd) => run(ctx, ctx.state, cmd as CommandOf<N>) };
}

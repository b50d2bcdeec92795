/**
 * `poplar deliver --user NAME` (R-X6): the local delivery agent for Postfix's `mailbox_command`,
 * procmail or a `.forward` pipe. Reads one message on stdin and delivers it through the same
 * DeliveryAgent as LMTP (trace headers, quota, warnings). Exit status (sysexits.h), which Postfix
 * maps onto bounce or retry:
 *   0  delivered (durable and visible whole)
 *   67 EX_NOUSER     no such user
 *   73 EX_CANTCREAT  over quota with `quota.over_quota = "reject"`, or larger than lmtp.max_message_size
 *   75 EX_TEMPFAIL   over quota with "defer", disk full or any storage failure: try again later
 */
import { Command } from 'commander';
import { printableName, userNameProblem } from '../user-name.js';
import { recordRefusal, reasonOf, refusalTallyDir, type RefusalReason } from '../delivery/refusals.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { configFrom, ExitStatus, withConfigOptions, type ConfigOptions } from './common.js';

export const EX_OK = 0;
export const EX_NOUSER = 67;
export const EX_CANTCREAT = 73;
export const EX_TEMPFAIL = 75;

interface DeliverOptions extends ConfigOptions {
  user: string;
  from?: string;
  recipient?: string;
}

async function readStdin(limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin) {
    total += (chunk as Buffer).length;
    if (total > limit) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Counts the refusal for the server's /metrics (refusals.ts); a failure to record changes no exit status. */
function refused(dataDir: string, logger: Logger, reason: RefusalReason, status: number, text: string): ExitStatus {
  try {
    recordRefusal(refusalTallyDir(dataDir), reason);
  } catch (err) {
    logger.warn({ event: 'refusal_not_recorded', reason, error: (err as Error).message }, 'could not record the refusal for the metrics');
  }
  return new ExitStatus(status, text);
}

async function deliver(opts: DeliverOptions): Promise<void> {
  let config;
  try {
    config = configFrom(opts);
  } catch (err) {
    throw new ExitStatus(EX_TEMPFAIL, (err as Error).message); // a broken config must not bounce mail
  }
  // Logs go to stderr: Postfix quotes a mailbox_command's output in bounces and its own log.
  const logger = createLogger(config.log.level === 'info' ? 'warn' : config.log.level, process.stderr);
  // A name the store cannot hold is nobody's (user-name.ts): bounce, never defer forever.
  const dataDir = config.server.data_dir;
  const problem = userNameProblem(opts.user);
  if (problem !== undefined) throw refused(dataDir, logger, 'unknown_user', EX_NOUSER, `no such user ${printableName(opts.user)}: ${problem}`);
  const { createAgent, createStore, openDirectory } = await import('./compose.js');
  const directory = await openDirectory(config);
  const record = await directory.lookup(opts.user).catch((err: unknown) => {
    throw refused(dataDir, logger, 'temp_failure', EX_TEMPFAIL, `cannot read the user directory: ${(err as Error).message}`);
  }).finally(() => directory.close?.());
  if (record === undefined) throw refused(dataDir, logger, 'unknown_user', EX_NOUSER, `no such user "${opts.user}"`);
  const message = await readStdin(config.lmtp.max_message_size);
  if (message === undefined) {
    throw refused(dataDir, logger, 'too_big', EX_CANTCREAT, `message larger than lmtp.max_message_size (${config.lmtp.max_message_size} octets)`);
  }
  const sender = opts.from ?? process.env['SENDER'] ?? '';
  const recipient = opts.recipient ?? process.env['ORIGINAL_RECIPIENT'] ?? process.env['RECIPIENT'] ?? record.name;
  let outcome;
  try {
    const store = createStore(config);
    const agent = createAgent(config, store, directory, logger);
    outcome = await agent.deliver(record.maildrop ?? record.name, message, { sender, recipient, protocol: 'local' });
    // The message is durable once deliver() resolved: a failing close must not bounce it.
    await store.close().catch((err: unknown) => logger.warn({ err }, 'closing the store failed'));
  } catch (err) {
    // Anything unexpected is temporary for the MTA (exit 1 would bounce the message).
    throw refused(dataDir, logger, 'temp_failure', EX_TEMPFAIL, `delivery failed, try again later: ${(err as Error).message ?? String(err)}`);
  }
  if (outcome.ok) return;
  const r = outcome.refusal;
  const reason = reasonOf(r);
  switch (r.kind) {
    case 'no-such-user':
      throw refused(dataDir, logger, reason, EX_NOUSER, `no such user "${opts.user}"`);
    case 'over-quota':
      throw refused(dataDir, logger, reason, r.temporary ? EX_TEMPFAIL : EX_CANTCREAT, `mailbox of "${record.name}" is over quota`);
    case 'failed':
      throw refused(dataDir, logger, reason, EX_TEMPFAIL, `delivery failed, try again later: ${(r.error as Error).message ?? String(r.error)}`);
  }
}

export function deliverCommand(): Command {
  return withConfigOptions(
    new Command('deliver')
      .description('deliver one message from stdin to a user (for mailbox_command / procmail); exits 0, 67, 73 or 75')
      .requiredOption('-u, --user <name>', 'the user whose maildrop receives the message')
      .option('-f, --from <address>', 'envelope sender for Return-Path (default: $SENDER)')
      .option('-a, --recipient <address>', 'envelope recipient for Delivered-To (default: $ORIGINAL_RECIPIENT, $RECIPIENT, the user)'),
  ).action((opts: DeliverOptions) => deliver(opts));
}

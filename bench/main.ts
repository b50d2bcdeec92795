/**
 * `npm run bench -- <scenario> [options]`: drives one scenario against any POP3/LMTP server and
 * prints its figures (and, with --json, the result as JSON). Asserts nothing about speed; a
 * verification failure exits 1.
 */
import { parseArgs, type Args } from './args.js';
import { formatResult, type Result } from './measure.js';
import { bigbox } from './scenarios/bigbox.js';
import { deliver } from './scenarios/deliver.js';
import { idle } from './scenarios/idle.js';
import { login } from './scenarios/login.js';
import { retr } from './scenarios/retr.js';

export const SCENARIOS: Record<string, (a: Args) => Promise<Result>> = { login, retr, bigbox, idle, deliver };

const HELP = `usage: npm run bench -- <scenario> [options]

scenarios:
  login     C clients loop connect, USER/PASS, STAT, QUIT      --clients 16 --users C --messages 10 --size 4096 [--tls]
  retr      each client RETRs its whole maildrop, repeatedly    --clients 4 --size 102400 --messages ~32MiB/size --threads 1
  bigbox    login+STAT, LIST, UIDL on one big maildrop          --messages 50000 --reps 5 --sample 20 --user bigbox
  idle      hold N authenticated sessions, sample NOOP latency  --sessions 10000 --users 100 --samplers 8 --open-concurrency 64
  deliver   LMTP deliveries with C concurrent clients           --clients 8 --users 10 --size 4096 --domain localhost (port 24)

common options:
  --host 127.0.0.1 --port 110 [--tls]     the server (implicit TLS: certificates are not checked)
  --password bench-password               every bench user's password
  --duration 10                           seconds of load (login, retr, idle sampling, deliver)
  --server-pid PID                        measure the server's CPU and PSS (process tree, /proc)
  --maildir 'DIR/%u' [--chown UID:GID]    seed the users' Maildirs first (new/); only Maildirs the
                                          bench made itself are ever replaced
  --seed 1                                message generator seed
  --json                                  print the result as JSON too
`;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const name = args.positional[0];
  const run = name === undefined ? undefined : SCENARIOS[name];
  if (run === undefined) {
    process.stdout.write(HELP);
    process.exitCode = name === undefined || name === 'help' ? 0 : 2;
    return;
  }
  const result = await run(args);
  process.stdout.write(formatResult(result) + '\n');
  if (args.flag('json')) process.stdout.write(JSON.stringify(result) + '\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}

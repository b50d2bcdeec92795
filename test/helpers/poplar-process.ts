/**
 * A real `poplar serve` in a child process (node dist/src/cli/main.js serve) on 127.0.0.1 with
 * port 0 for POP3 and LMTP, on a fresh data directory: what an operator runs, including the
 * composition root, the retention sweeper and the policy file. Ports are read from the JSON
 * `listening` log lines. Every process started here is killed by stop() or kill().
 *
 * R-X16: `server.workers` is TEST_WORKERS (the variable POPLAR_TEST_WORKERS, default 1) unless the
 * test passes `workers`; with more than one, start() waits for the primary's `workers_ready`.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PasswdFile } from '../../src/auth/passwd-file.js';
import { hashPassword } from '../../src/auth/password.js';
import { MAIN, poplar, type Run } from '../cli/run.js';
import { waitFor } from './wait.js';

export interface PoplarProcess {
  readonly dataDir: string;
  readonly pop3Port: number;
  readonly lmtpPort: number;
  /** The POP3S port when `pop3.tls_listen` is served (a certificate is configured), else 0. */
  readonly tlsPort: number;
  /** The metrics and health endpoint's port when `server.metrics_listen` is set, else 0. */
  readonly metricsPort: number;
  readonly child: ChildProcessWithoutNullStreams;
  /** Everything the server wrote to stdout so far (JSON log lines). */
  output(): string;
  /** Every log line written so far, parsed. */
  logs(): Array<Record<string, unknown>>;
  /** Parsed log lines with this `event`. */
  events(event: string): Array<Record<string, unknown>>;
  /**
   * The lines with this `event`, once there are at least `want` of them (default 1), or those that
   * match `want` once one does; waits up to 5 s: the server writes its log asynchronously, so the
   * line about a reply may reach the test after the reply did.
   */
  logged(event: string, want?: number | ((line: Record<string, unknown>) => boolean)): Promise<Array<Record<string, unknown>>>;
  /** Runs another `poplar` subcommand on the same data directory and overrides. */
  cli(args: readonly string[], input?: string): Promise<Run>;
  /** SIGTERM and wait; the data directory is kept until cleanup(). */
  stop(): Promise<void>;
  /** SIGKILL and wait. */
  kill(): Promise<void>;
  /** Stops the process if needed and removes the data directory. */
  cleanup(): Promise<void>;
}

/** Creates users with cheap scrypt hashes in `<dataDir>/users` (passwords = the values). */
export async function addUsers(dataDir: string, users: Record<string, string>): Promise<void> {
  const file = new PasswdFile(join(dataDir, 'users'));
  for (const [name, pw] of Object.entries(users)) await file.add(name, await hashPassword(pw, { cost: 10 }));
}

/** R-X16: the worker processes of every `poplar serve` the e2e helpers start (POPLAR_TEST_WORKERS, default 1). */
export const TEST_WORKERS = Number(process.env['POPLAR_TEST_WORKERS'] ?? '1') || 1;

export async function startPoplar(opts: {
  overrides?: readonly string[];
  users?: Record<string, string>;
  dataDir?: string;
  /** `server.workers` (default TEST_WORKERS). */
  workers?: number;
  env?: NodeJS.ProcessEnv;
  /** A TOML config file (`--config`), for tests that change it and reload. */
  configFile?: string;
  /** Flags for node before the script (bench/identity.ts: --cpu-prof, which NODE_OPTIONS refuses). */
  nodeArgs?: readonly string[];
} = {}): Promise<PoplarProcess> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'poplar-serve-')));
  await addUsers(dataDir, opts.users ?? { alice: 'wonderland' });
  const workers = opts.workers ?? TEST_WORKERS;
  const common = [...(opts.configFile === undefined ? [] : ['--config', opts.configFile]), '--data', dataDir, '-o', 'server.first_run_user=', '-o', `server.workers=${workers}`, ...(opts.overrides ?? []).flatMap((o) => ['-o', o])];
  // A test's own pop3.listen (another host) replaces the default one.
  const listen = (opts.overrides ?? []).some((o) => o.startsWith('pop3.listen=')) ? [] : ['-o', 'pop3.listen=127.0.0.1:0'];
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), MAIN, 'serve', ...common, ...listen, '-o', 'lmtp.listen=127.0.0.1:0'], {
    ...(opts.env === undefined ? {} : { env: { ...process.env, ...opts.env } }),
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  // Each whole line parsed once, as it arrives; one still being written waits for its end.
  const lines: Array<Record<string, unknown>> = [];
  let parsedTo = 0;
  const parsed = (): Array<Record<string, unknown>> => {
    const end = out.lastIndexOf('\n') + 1;
    if (end > parsedTo) {
      for (const line of out.slice(parsedTo, end).split('\n')) if (line.startsWith('{')) lines.push(JSON.parse(line) as Record<string, unknown>);
      parsedTo = end;
    }
    return lines;
  };
  const events = (event: string): Array<Record<string, unknown>> => parsed().filter((e) => e['event'] === event);
  const metrics = (opts.overrides ?? []).some((o) => /^server\.metrics_listen=./.test(o));
  // Generous: the test machine may be loaded; a server that does not start still fails here.
  const deadline = Date.now() + 20_000 + 10_000 * workers;
  for (;;) {
    const listening = parsed().filter((e) => e['event'] === 'listening');
    const serving = (protocol: string | undefined): boolean => listening.some((e) => e['protocol'] === protocol);
    const up = serving(undefined) && serving('lmtp') && (!metrics || serving('http'));
    if (up && (workers <= 1 || parsed().some((e) => e['event'] === 'workers_ready'))) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`poplar serve did not start (exit ${child.exitCode}): ${err}${out}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const listening = parsed().filter((e) => e['event'] === 'listening');
  const lmtpPort = Number(listening.find((e) => e['protocol'] === 'lmtp')!['port']);
  // POP3's lines name no protocol; POP3S's add `tls: true`; the metrics endpoint's say 'http'.
  const pop3Port = Number(listening.find((e) => e['protocol'] === undefined && e['tls'] !== true)!['port']);
  const tlsPort = Number(listening.find((e) => e['protocol'] === undefined && e['tls'] === true)?.['port'] ?? 0);
  const metricsPort = Number(listening.find((e) => e['protocol'] === 'http')?.['port'] ?? 0);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // 'close' comes once stdout is read to its end: the last log lines are in `out`. Its workers hold
  // the same pipe, so a worker slow to go could hold it open: then the wait ends after 2 s.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const signal = async (s: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(s);
    await exited;
    await Promise.race([closed, sleep(2000, undefined, { ref: false })]);
  };
  return {
    dataDir,
    pop3Port,
    lmtpPort,
    tlsPort,
    metricsPort,
    child,
    output: () => out,
    logs: parsed,
    events,
    async logged(event, want = 1) {
      const wanted = (): Array<Record<string, unknown>> => (typeof want === 'number' ? events(event) : events(event).filter(want));
      await waitFor(() => wanted().length >= (typeof want === 'number' ? want : 1), 5000, `the ${event} line(s) wanted`);
      return wanted();
    },
    cli: (args, input) => poplar([...args, ...common], input === undefined ? {} : { input }),
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    async cleanup() {
      await signal('SIGKILL');
      if (opts.dataDir === undefined) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

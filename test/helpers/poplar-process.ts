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
import { PasswdFile } from '../../src/auth/passwd-file.js';
import { hashPassword } from '../../src/auth/password.js';
import { MAIN, poplar, type Run } from '../cli/run.js';

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
  /** Parsed log lines with this `event`. */
  events(event: string): Array<Record<string, unknown>>;
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
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const parsed = (): Array<Record<string, unknown>> =>
    out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
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
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, 2000)))]);
    clearTimeout(timer);
  };
  return {
    dataDir,
    pop3Port,
    lmtpPort,
    tlsPort,
    metricsPort,
    child,
    output: () => out,
    events: (event) => parsed().filter((e) => e['event'] === event),
    cli: (args, input) => poplar([...args, ...common], input === undefined ? {} : { input }),
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    async cleanup() {
      await signal('SIGKILL');
      if (opts.dataDir === undefined) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

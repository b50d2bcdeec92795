/**
 * `poplar reload` (R-S20, R-X3, R-X13): makes the running server read its whole configuration
 * again (the config file with the same command-line overrides, the TLS certificate, key and client
 * CA, the OAuth issuers' JWKS) and apply it to new sessions without dropping a live one. It sends
 * SIGHUP to the process named in `server.pid_file` (written by `poplar serve`; `kill -HUP <pid>`
 * does the same), then waits for the server's answer in `<pid_file>.reload` and prints it: keys
 * that only a restart changes are named, and a configuration or certificate that did not load is
 * an error (exit 1). Users-file changes need no reload: the server sees them at once.
 */
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { CliError, configFrom, withConfigOptions, type ConfigOptions } from './common.js';
import { reloadStatusPath, type ReloadStatus } from './serve-pidfile.js';


/** How long `poplar reload` waits for the server's answer. */
const ANSWER_MS = 15_000;

async function readStatus(path: string): Promise<ReloadStatus | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as ReloadStatus;
  } catch {
    return undefined;
  }
}

async function reload(opts: ConfigOptions): Promise<void> {
  const { pid_file: pidFile } = configFrom(opts).server;
  if (pidFile === '') throw new CliError('server.pid_file is "", so the server cannot be found; send it SIGHUP yourself');
  let text: string;
  try {
    text = await readFile(pidFile, 'utf8');
  } catch {
    throw new CliError(`no pid file at ${pidFile}: is "poplar serve" running with this configuration?`);
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new CliError(`${pidFile} does not hold a process id`);
  const statusPath = reloadStatusPath(pidFile);
  const previous = await readStatus(statusPath);
  const before = previous?.pid === pid ? previous.count : 0;
  try {
    process.kill(pid, 'SIGHUP');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(code === 'ESRCH' ? `no process ${pid} (stale ${pidFile}): the server is not running` : `cannot signal process ${pid}: ${code}`);
  }
  const deadline = Date.now() + ANSWER_MS;
  let status = await readStatus(statusPath);
  while (status === undefined || status.pid !== pid || status.count <= before) {
    if (Date.now() > deadline) throw new CliError(`sent SIGHUP to poplar (pid ${pid}) but it did not answer within ${ANSWER_MS / 1000} s; see the server log`);
    await new Promise((r) => setTimeout(r, 50));
    status = await readStatus(statusPath);
  }
  if (!status.applied) {
    throw new CliError(`reload failed, the server (pid ${pid}) keeps its running configuration: ${status.errors.join('; ')}`);
  }
  const lines = [`poplar (pid ${pid}): configuration reloaded; new sessions use it, live ones keep theirs`];
  if (status.restartNeeded.length > 0) lines.push(`these changes need a restart to take effect: ${status.restartNeeded.join(', ')}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  if (status.errors.length > 0) throw new CliError(`certificates or keys did not load, the previous ones stay in use: ${status.errors.join('; ')}`);
}

export function reloadCommand(): Command {
  return withConfigOptions(
    new Command('reload').description('make the running server re-read its configuration, TLS certificates and OAuth keys (SIGHUP)'),
  ).action((opts: ConfigOptions) => reload(opts));
}

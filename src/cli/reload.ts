/**
 * `poplar reload` (R-X3, R-S20): asks the running server to re-read its TLS certificate, key and
 * client CA, and the OAuth issuers' JWKS files, without dropping a session. It sends SIGHUP to the
 * process named in `server.pid_file` (written by `poplar serve`); `kill -HUP <pid>` does the same.
 * Users-file changes need no reload: the server sees them at once.
 */
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { CliError, configFrom, withConfigOptions, type ConfigOptions } from './common.js';

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
  try {
    process.kill(pid, 'SIGHUP');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(code === 'ESRCH' ? `no process ${pid} (stale ${pidFile}): the server is not running` : `cannot signal process ${pid}: ${code}`);
  }
  process.stdout.write(`sent SIGHUP to poplar (pid ${pid}): certificates and keys are being reloaded; see the server log\n`);
}

export function reloadCommand(): Command {
  return withConfigOptions(
    new Command('reload').description('make the running server re-read its TLS certificate and OAuth keys (SIGHUP)'),
  ).action((opts: ConfigOptions) => reload(opts));
}

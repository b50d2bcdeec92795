/**
 * `poplar serve`: load the configuration and run the server (cli/serve.ts, the composition root).
 * serve.ts is imported on demand so the management subcommands never load the server.
 */
import { Command } from 'commander';
import { configFrom, withConfigOptions, type ConfigOptions } from './common.js';

export function serveCommand(): Command {
  return withConfigOptions(new Command('serve').description('run the POP3 server')).action(async (opts: ConfigOptions) => {
    const config = configFrom(opts);
    const { runServe } = await import('./serve.js');
    await runServe(config, () => configFrom(opts));
  });
}

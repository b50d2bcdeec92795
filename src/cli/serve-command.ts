/**
 * `poplar serve`: load the configuration and run the server (cli/serve.ts). serve.ts is the only
 * module that imports the server, and it is imported on demand here, so the management subcommands
 * (which build their parts with compose.ts) never load it (test/structure/composition.test.ts).
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

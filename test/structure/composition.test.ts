/**
 * Issue #13, one composition root: the management subcommands build their parts with
 * cli/compose.ts and never load the server. Each subcommand runs in its own process with module
 * hooks that record every module it loads (load-recorder.ts); none of server.ts, session/,
 * commands/ or net/listener.ts may be among them. Regression: `quota`, `retention`, `expire`,
 * `import`, `export` and `deliver` imported cli/serve.ts for their factories, and with it the
 * whole server.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { MAIN } from '../cli/run.js';
import { startPoplar } from '../helpers/poplar-process.js';

const HOOKS = new URL('./load-recorder.js', import.meta.url).href;
const REGISTER = `data:text/javascript,import { register } from 'node:module'; register(${JSON.stringify(HOOKS)});`;
const SERVER_MODULES = /\/src\/(?:server\.js|session\/|commands\/|net\/listener\.js)/;

interface Loaded {
  code: number | null;
  stderr: string;
  modules: string[];
}

async function runRecorded(args: readonly string[], logFile: string, input = ''): Promise<Loaded> {
  await writeFile(logFile, '');
  const child = spawn(process.execPath, ['--import', REGISTER, MAIN, ...args], {
    stdio: ['pipe', 'ignore', 'pipe'],
    env: { ...process.env, POPLAR_LOAD_LOG: logFile },
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin.end(input);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const modules = (await readFile(logFile, 'utf8')).split('\n').filter(Boolean);
  return { code, stderr, modules };
}

it('issue #13 composition root: management subcommands (user, grant, quota, retention, expire, deliver, import, export) never load the server, session, commands or listener modules', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'poplar-compose-'));
  const log = join(dir, 'loaded');
  const data = ['--data', dir];
  const message = 'From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n';
  await writeFile(join(dir, 'in.mbox'), `From a@example.org Thu Jan  1 00:00:00 2026\n${message.replaceAll('\r\n', '\n')}\n`);
  const runs: Array<{ args: string[]; input?: string }> = [
    { args: ['user', 'add', 'alice', '--password-stdin', ...data], input: 'wonderland\n' },
    { args: ['user', 'add', 'bob', '--password-stdin', ...data], input: 'builder\n' },
    { args: ['user', 'list', ...data] },
    { args: ['grant', 'alice', 'bob', ...data] },
    { args: ['quota', 'set', 'alice', '--bytes', '1M', ...data] },
    { args: ['quota', 'list', ...data] },
    { args: ['retention', 'set', 'alice', '--retrieved-days', '30', ...data] },
    { args: ['retention', 'get', 'alice', ...data] },
    { args: ['deliver', '-u', 'alice', ...data], input: message },
    { args: ['import', '--user', 'bob', join(dir, 'in.mbox'), ...data] },
    { args: ['export', '--user', 'alice', '--format', 'mbox', join(dir, 'out.mbox'), ...data] },
    { args: ['expire', '--dry-run', ...data] },
  ];
  try {
    for (const run of runs) {
      const r = await runRecorded(run.args, log, run.input);
      const name = run.args.slice(0, 2).join(' ');
      assert.equal(r.code, 0, `poplar ${name}: ${r.stderr}`);
      assert.ok(r.modules.some((u) => u.endsWith('/src/cli/main.js')), `poplar ${name}: the recorder saw the CLI load`);
      const server = r.modules.filter((u) => SERVER_MODULES.test(u));
      assert.deepEqual(server, [], `poplar ${name} loaded server modules`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it('R-X16 start-up cost: the primary of a multi-process `poplar serve` never loads the POP3 server, sessions, commands, listener or LMTP modules; its workers do', async () => {
  const logs = await mkdtemp(join(tmpdir(), 'poplar-loaded-'));
  const p = await startPoplar({ workers: 2, nodeArgs: ['--import', REGISTER], env: { POPLAR_LOAD_LOG: join(logs, '%p') } });
  try {
    await p.stop();
    assert.equal(p.child.exitCode, 0, p.output());
    const loaded = async (name: string): Promise<string[]> => (await readFile(join(logs, name), 'utf8')).split('\n').filter(Boolean);
    const primary = await loaded(String(p.child.pid));
    const others = (await readdir(logs)).filter((name) => name !== String(p.child.pid));
    assert.equal(others.length, 2, `one record per worker: ${others.join(', ')}`);
    const workers = (await Promise.all(others.map(loaded))).flat();
    const serving = (u: string): boolean => SERVER_MODULES.test(u) || u.endsWith('/src/delivery/lmtp/lmtp-listener.js');
    assert.ok(primary.some((u) => u.endsWith('/src/cli/serve-primary.js')), 'the recorder saw the primary load serve-primary.js');
    assert.deepEqual(primary.filter(serving), [], 'the primary loaded serving modules');
    assert.ok(workers.some((u) => u.endsWith('/src/server.js')) && workers.some((u) => u.endsWith('/src/delivery/lmtp/lmtp-listener.js')), 'the workers loaded the server and LMTP');
  } finally {
    await p.cleanup();
    await rm(logs, { recursive: true, force: true });
  }
});

it('issue #13 start-up cost: `poplar user list` and `poplar serve --help` load their own subcommand module only, not the others (import, export, deliver, cert…) nor migrate/; regression: main.ts imported all fourteen at start', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'poplar-compose-'));
  const log = join(dir, 'loaded');
  try {
    const own: Record<string, string> = { user: 'user.js', serve: 'serve-command.js' };
    for (const [args, mine] of [[['user', 'list', '--data', dir], own['user']], [['serve', '--help'], own['serve']]] as const) {
      const r = await runRecorded(args, log);
      assert.equal(r.code, 0, `poplar ${args.join(' ')}: ${r.stderr}`);
      const cli = r.modules.filter((u) => /\/src\/cli\/[^/]+\.js$/.test(u)).map((u) => u.replace(/.*\/src\/cli\//, ''));
      const others = cli.filter((m) => !['main.js', 'common.js', 'prompt.js', 'compose.js', mine].includes(m));
      assert.deepEqual(others, [], `poplar ${args.join(' ')} loaded other subcommands' modules`);
      assert.deepEqual(r.modules.filter((u) => u.includes('/src/migrate/')), [], `poplar ${args.join(' ')} loaded migrate/`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it('issue #13 start-up cost: `poplar --help` still lists all fourteen subcommands, and each name loads the module that defines it', async () => {
  const { program } = (await import(pathToFileURL(MAIN).href)) as { program: (argv?: readonly string[]) => Promise<Command> };
  const all = (await program()).commands.map((c) => c.name());
  assert.deepEqual(all, ['serve', 'user', 'grant', 'config', 'deliver', 'quota', 'retention', 'expire', 'import', 'export', 'cert', 'reload', 'admin', 'db']);
  for (const name of all) assert.deepEqual((await program([name, '--help'])).commands.map((c) => c.name()), [name]);
});

/**
 * R-X13 packaging, the way an admin installs poplar: `npm pack` of a clean checkout (a copy of the
 * working tree without dist/, lib/ or node_modules/, so `prepack` must build), then
 * `npm install -g --prefix <tmp> poplar-x.y.z.tgz`, then the installed `<tmp>/bin/poplar` adds a
 * user, delivers a message, serves, and a real POP3 session logs in and RETRs it.
 *
 * SLOW (about 15-30 s: a tsc build of src/ and an npm install). The install resolves the
 * runtime dependencies with `--prefer-offline`: their tarballs are in the npm cache after
 * `npm ci`; the registry is asked only for package metadata not cached yet.
 *
 * Regression: before `files` and `prepack`, the tarball of a clean checkout had no compiled code
 * (the `poplar` bin pointed at a missing dist/src/cli/main.js), and that of a built tree carried
 * every test and source map.
 */
import { TEST_WORKERS } from '../helpers/poplar-process.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { runProcess, type Run } from '../cli/run.js';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { needProgram } from '../helpers/external.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { waitFor } from '../helpers/wait.js';

/** The checkout: this file runs as dist/test/ops/npm-pack.test.js. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** What a clean checkout does not have (.gitignore's entries and the git folder). */
const NOT_IN_CHECKOUT = new Set(['.git', 'node_modules', 'dist', 'lib', 'data', '.tmp']);


/** The environment without what an enclosing `npm test` exports (npm_config_prefix and the like), keeping the cache. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.toLowerCase().startsWith('npm_') || /^npm_config_(cache|userconfig)$/i.test(k)) env[k] = v;
  }
  return env;
}

function run(cmd: string, args: readonly string[], opts: { cwd?: string; input?: string } = {}): Promise<Run> {
  return runProcess(cmd, args, { ...opts, env: cleanEnv() });
}

const MESSAGE = 'From: bob@example.org\r\nTo: alice@example.org\r\nSubject: installed from the tarball\r\n\r\nHello from npm install -g.\r\n';

describe('R-X13 npm pack + npm install -g (slow: builds and installs the package)', { skip: needProgram('npm', 'npm') }, () => {
  let tmp = '';
  let prefix = '';
  let bin = '';
  let installed = '';
  let packed: string[] = [];
  let server: ChildProcess | undefined;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'poplar-npm-pack-'));
    const checkout = join(tmp, 'checkout');
    mkdirSync(checkout);
    for (const name of readdirSync(ROOT)) {
      if (!NOT_IN_CHECKOUT.has(name) && !name.endsWith('.log')) cpSync(join(ROOT, name), join(checkout, name), { recursive: true });
    }
    // prepack's tsc comes from the devDependencies `npm ci` installed.
    symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(checkout, 'node_modules'));

    const pack = await run('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: checkout });
    assert.equal(pack.code, 0, `npm pack failed: ${pack.stderr}`);
    const [info] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
    packed = info!.files.map((f) => f.path);

    prefix = join(tmp, 'prefix');
    const install = await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', join(tmp, info!.filename)], { cwd: tmp });
    assert.equal(install.code, 0, `npm install -g failed: ${install.stderr}`);
    bin = join(prefix, 'bin', 'poplar');
    installed = join(prefix, 'lib', 'node_modules', 'poplar');
  });

  after(() => {
    server?.kill('SIGKILL');
    if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
  });

  // R-X20: the GSSAPI addon ships as source and is built by the package's install script.
  const GSSAPI_FILES = ['native/gssapi/acceptor.cc', 'native/gssapi/binding.gyp', 'scripts/build-gssapi.mjs'];

  it('the tarball holds the compiled server and the admin files, no tests, sources or source maps', () => {
    assert.ok(packed.includes('lib/cli/main.js'), packed.join('\n'));
    assert.ok(packed.includes('packaging/poplar.service'));
    assert.ok(packed.includes('docs/operations.md'));
    for (const f of GSSAPI_FILES) assert.ok(packed.includes(f), `${f} is not in the tarball`);
    // R-X21: the admin console's assets are bundled at build time and shipped; nothing from a CDN.
    for (const f of ['index.html', 'app.js', 'app.css']) assert.ok(packed.includes(`lib/admin/console/${f}`), `lib/admin/console/${f}`);
    const stray = packed.filter((p) =>
      !/^(lib|packaging|docs)\//.test(p) && p !== 'package.json' && p !== 'README.md' && !GSSAPI_FILES.includes(p) ||
      /\.test\.js$|\.map$|\.ts$/.test(p) || /^(test|bench|src|dist)\//.test(p));
    assert.deepEqual(stray, []);
  });

  it('R-X20 the install built the GSSAPI addon from source (libkrb5-dev)', { skip: needProgram('krb5-config', 'libkrb5-dev') }, () => {
    assert.ok(existsSync(join(installed, 'native/gssapi/build/Release/poplar_gssapi.node')), 'native/gssapi was not built by npm install');
  });

  it('poplar --version prints the package version', async () => {
    const r = await run(bin, ['--version']);
    assert.equal(r.code, 0, r.stderr);
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(r.stdout.trim(), version);
  });

  it('the worker modules the server loads by URL at run time are installed beside their loaders and load', async () => {
    const targets: string[] = [];
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.js')) {
          for (const m of readFileSync(p, 'utf8').matchAll(/new URL\('(\.{1,2}\/[^']+\.js)', import\.meta\.url\)/g)) {
            targets.push(fileURLToPath(new URL(m[1]!, `file://${p}`)));
          }
        }
      }
    };
    walk(join(installed, 'lib'));
    const names = targets.map((t) => t.slice(installed.length + 1)).sort();
    assert.deepEqual(names, ['lib/auth/sha-crypt-worker.js', 'lib/storage/maildir/maildir-bulk-worker.js']);
    for (const t of targets) assert.ok(existsSync(t), `${t} is missing`);
    // Each is started as a worker thread from the installed tree: its imports (hash-wasm …) resolve there.
    const code = `import { Worker } from 'node:worker_threads';
      for (const f of process.argv.slice(1)) {
        const w = new Worker(f);
        await new Promise((ok, fail) => { w.once('error', fail); w.once('online', ok); });
        await new Promise((r) => setTimeout(r, 300));
        await w.terminate();
      }
      console.log('ok');`;
    const r = await run(process.execPath, ['--input-type=module', '-e', code, ...targets], { cwd: tmp });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'ok', r.stderr);
  });

  it('the installed poplar adds a user, delivers, serves, and a POP3 login RETRs the message', async () => {
    const data = join(tmp, 'data');
    const common = ['--data', data, '-o', 'server.first_run_user='];
    const add = await run(bin, ['user', 'add', 'alice', '--password-stdin', ...common], { input: 'install-test-pw\n' });
    assert.equal(add.code, 0, add.stderr);
    const deliver = await run(bin, ['deliver', '--user', 'alice', ...common], { input: MESSAGE });
    assert.equal(deliver.code, 0, deliver.stderr);

    const child = spawn(bin, ['serve', ...common, '-o', `server.workers=${TEST_WORKERS}`, '-o', 'pop3.listen=127.0.0.1:0'], { env: cleanEnv(), cwd: tmp });
    server = child;
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const listening = (): Record<string, unknown> | undefined =>
      out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((e) => e['event'] === 'listening' && e['protocol'] !== 'lmtp');
    await waitFor(() => listening() !== undefined || child.exitCode !== null, 15_000).catch(() => undefined);
    assert.ok(listening(), `poplar serve did not start: ${err}${out}`);

    const c = await Pop3Client.connect(Number(listening()!['port']));
    assert.match(await c.login('alice', 'install-test-pw'), /^\+OK/);
    const retr = await c.multi('RETR 1');
    assert.match(retr.status, /^\+OK/);
    assert.ok(retr.lines.includes('Subject: installed from the tarball'), retr.lines.join('\n'));
    assert.match(await c.cmd('QUIT'), /^\+OK/);

    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    assert.equal(child.exitCode, 0, err);
  });
});

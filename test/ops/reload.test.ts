/**
 * Issue #12, reload and the pid file, on a real `poplar serve` child process driven by a config
 * file and `poplar reload` (R-X13, R-S20, R-X3, R-X4): every key a reload changes is either applied
 * to new sessions or named, in the server log and in `poplar reload`'s output, as needing a
 * restart; and one data directory has one live server, whose pid file a second one leaves alone.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { Pop3Client } from '../helpers/pop3-client.js';
import { testCerts } from '../helpers/certs.js';
import { needProgram } from '../helpers/external.js';
import { waitFor } from '../helpers/wait.js';
import { addUsers, startPoplar, TEST_WORKERS } from '../helpers/poplar-process.js';
import { MAIN, poplar } from '../cli/run.js';

interface Served {
  readonly dir: string;
  readonly config: string;
  readonly child: ChildProcess;
  events(event: string): Array<Record<string, unknown>>;
  port(tls: boolean): number;
  /** Rewrites the config file with these lines after the fixed [server] section. */
  write(lines: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

/** `poplar serve --config FILE` on a fresh data directory; waits for `listeners` listening lines. */
async function serveWithConfig(lines: readonly string[], listeners: number): Promise<Served> {
  const dir = await mkdtemp(join(tmpdir(), 'poplar-reload-'));
  const config = join(dir, 'poplar.toml');
  const write = (more: readonly string[]): Promise<void> =>
    writeFile(config, ['[server]', `data_dir = "${dir}"`, 'first_run_user = ""', `workers = ${TEST_WORKERS}`, ...more, ''].join('\n'));
  await write(lines);
  await addUsers(dir, { alice: 'wonderland' });
  const child = spawn(process.execPath, [MAIN, 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const all = (): Array<Record<string, unknown>> =>
    out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const events = (event: string): Array<Record<string, unknown>> => all().filter((e) => e['event'] === event);
  // R-X16: with workers, every worker logs its listeners; the primary says when all are ready.
  const ready = (): boolean => events('listening').length >= listeners * TEST_WORKERS && (TEST_WORKERS === 1 || events('workers_ready').length > 0);
  try {
    // A wait on a condition: the limit only matters when the server never gets ready (a loaded machine is slow, not broken).
    await waitFor(() => ready() || child.exitCode !== null, 30_000 * TEST_WORKERS);
    assert.equal(child.exitCode, null, out);
  } catch (err) {
    // A server that did not get ready must not outlive the test: it kept the test file running until the runner's timeout.
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    config,
    child,
    events,
    port: (tls) => Number(events('listening').find((e) => e['protocol'] === undefined && (e['tls'] === true) === tls)!['port']),
    write,
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** `poplar reload`, then the server's `config_reloaded` line number `n` (1-based). */
async function reload(s: Served, n: number): Promise<{ stdout: string; logged: Record<string, unknown> }> {
  const r = await poplar(['reload', '--config', s.config]);
  assert.equal(r.code, 0, r.stderr);
  await waitFor(() => s.events('config_reloaded').length >= n, 5000);
  return { stdout: r.stdout, logged: s.events('config_reloaded')[n - 1]! };
}

const openssl = needProgram('openssl', 'openssl');

/** Runs `poplar ARGS` and kills it after `ms` if it has not exited (a serve that should refuse). */
async function runBriefly(args: readonly string[], ms: number): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stderr };
}

describe('poplar reload applies or names every key', () => {
  it('R-X4 R-S20 a reload that sets tls.client_ca makes EXTERNAL accept a client certificate of that CA', { skip: openssl, timeout: 60_000 }, async () => {
    // Regression: the TLS provider re-read the files named at start, so a new client CA was
    // logged as reloaded and EXTERNAL still found no trusted certificate.
    const certs = await testCerts();
    const base = [
      '[pop3]', 'listen = ["127.0.0.1:0"]', 'tls_listen = ["127.0.0.1:0"]',
      '[auth]', 'mechanisms = ["PLAIN", "EXTERNAL"]',
      '[tls]', `cert = "${certs.cert}"`, `key = "${certs.key}"`,
    ];
    const s = await serveWithConfig(base, 2);
    try {
      const withCert = { cert: await readFile(certs.clientCert), key: await readFile(certs.clientKey) };
      const before = await Pop3Client.connectTls(s.port(true), withCert);
      assert.equal(await before.cmd('AUTH EXTERNAL ='), '-ERR Unsupported authentication mechanism EXTERNAL');
      before.close();

      await s.write([...base, `client_ca = "${certs.ca}"`]);
      const { logged } = await reload(s, 1);
      assert.deepEqual(logged['restartNeeded'], []);
      const after = await Pop3Client.connectTls(s.port(true), withCert);
      assert.match(await after.cmd('AUTH EXTERNAL ='), /^\+OK/);
      after.close();
    } finally {
      await s.close();
    }
  });

  it('R-S9 R-X4 R-S20 a reload that changes auth.mechanisms and oauth.issuers changes CAPA and AUTH of new sessions', { timeout: 60_000 }, async () => {
    // Regression: the token verifier was made at start only, so XOAUTH2 added by a reload (with
    // its issuer) was logged as reloaded and never offered.
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const base = ['[pop3]', 'listen = ["127.0.0.1:0"]', 'tls_listen = []'];
    const s = await serveWithConfig([...base, '[auth]', 'mechanisms = ["PLAIN", "LOGIN"]'], 1);
    try {
      const jwks = join(s.dir, 'jwks.json');
      await writeFile(jwks, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
      const before = await Pop3Client.connect(s.port(false));
      assert.ok((await before.multi('CAPA')).lines.includes('SASL PLAIN LOGIN'));
      before.close();

      await s.write([...base, '[auth]', 'mechanisms = ["PLAIN", "CRAM-MD5", "XOAUTH2"]', '[oauth]', `issuers = ["https://id.poplar.test ${jwks}"]`]);
      const { logged } = await reload(s, 1);
      assert.deepEqual(logged['restartNeeded'], []);
      const after = await Pop3Client.connect(s.port(false));
      assert.ok((await after.multi('CAPA')).lines.includes('SASL PLAIN CRAM-MD5 XOAUTH2'));
      assert.deepEqual((await after.multi('AUTH')).lines, ['PLAIN', 'CRAM-MD5', 'XOAUTH2']);
      assert.equal(await after.cmd('AUTH LOGIN'), '-ERR Unsupported authentication mechanism LOGIN');
      const token = await new SignJWT({ email: 'alice' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer('https://id.poplar.test').setIssuedAt().setExpirationTime('5m').sign(privateKey);
      const xoauth2 = Buffer.from(`user=alice\x01auth=Bearer ${token}\x01\x01`).toString('base64');
      assert.match(await after.cmd(`AUTH XOAUTH2 ${xoauth2}`), /^\+OK/);
      after.close();
    } finally {
      await s.close();
    }
  });

  it('R-X13 R-S20 a reload that changes pop3.listen names it as needing a restart in the log and in poplar reload', { timeout: 60_000 }, async () => {
    // Regression: a new listen address was ignored without a word, and `poplar reload` said
    // "certificates and keys are being reloaded" whatever changed.
    const s = await serveWithConfig(['[pop3]', 'listen = ["127.0.0.1:0"]', 'tls_listen = []', 'greeting = "one"'], 1);
    try {
      await s.write(['[pop3]', 'listen = ["127.0.0.1:0", "[::1]:0"]', 'tls_listen = []', 'greeting = "two"']);
      const { stdout, logged } = await reload(s, 1);
      assert.deepEqual(logged['restartNeeded'], ['pop3.listen']);
      assert.match(String(logged['msg']), /pop3\.listen/);
      assert.match(stdout, /configuration reloaded/);
      assert.match(stdout, /needs? a restart.*pop3\.listen/);
      assert.doesNotMatch(stdout, /certificates and keys/);
      const c = await Pop3Client.connect(s.port(false));
      assert.equal(await c.greeting, '+OK two', 'the other keys were applied');
      c.close();
    } finally {
      await s.close();
    }
  });

  it('R-X13 poplar reload reports a configuration the server refused, and the server keeps its own', { timeout: 60_000 }, async () => {
    const s = await serveWithConfig(['[pop3]', 'listen = ["127.0.0.1:0"]', 'tls_listen = []', 'greeting = "kept"'], 1);
    try {
      await s.write(['[pop3]', 'listen = ["127.0.0.1:0"]', 'tls_listen = []', 'greeting = "new"', 'max_command_length = 5']);
      // With the same file, `poplar reload` finds the problem itself and signals nothing.
      const own = await poplar(['reload', '--config', s.config]);
      assert.equal(own.code, 1);
      assert.match(own.stderr, /pop3\.max_command_length/);
      // Found through the data directory, the server reads its file, refuses it and says why.
      const r = await poplar(['reload', '--data', s.dir]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /^poplar: reload failed, the server .* keeps its running configuration: pop3\.max_command_length/);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      // The server writes its log asynchronously: the line may reach the test after `poplar reload` exited.
      await waitFor(() => s.events('reload_failed').length >= 1, 5000, 'the reload_failed line');
      assert.equal(s.events('reload_failed').length, 1);
      assert.equal(s.events('config_reloaded').length, 0);
      const c = await Pop3Client.connect(s.port(false));
      assert.equal(await c.greeting, '+OK kept');
      c.close();
    } finally {
      await s.close();
    }
  });
});

describe('the pid file', () => {
  it('R-X13 a second serve on the same data directory refuses to start and leaves the first one\'s pid file', { timeout: 60_000 }, async () => {
    // Regression: the second serve started, overwrote the pid file, and on exit deleted it, so
    // `poplar reload` no longer found the first server.
    const first = await startPoplar();
    try {
      const pidFile = join(first.dataDir, 'poplar.pid');
      assert.equal((await readFile(pidFile, 'utf8')).trim(), String(first.child.pid));
      const second = await runBriefly(['serve', '--data', first.dataDir, '-o', `server.workers=${TEST_WORKERS}`, '-o', 'server.first_run_user=', '-o', 'pop3.listen=127.0.0.1:0', '-o', 'pop3.tls_listen=[]'], 10_000);
      assert.notEqual(second.code, 0);
      assert.notEqual(second.code, null, 'it exited by itself');
      assert.match(second.stderr, new RegExp(`^poplar: .*already running.*pid ${first.child.pid}`));
      assert.equal(second.stderr.trim().split('\n').length, 1, second.stderr);
      assert.equal((await readFile(pidFile, 'utf8')).trim(), String(first.child.pid));
      const r = await first.cli(['reload']);
      assert.equal(r.code, 0, r.stderr);
      await first.stop();
      assert.ok(!existsSync(pidFile), 'the first server removes its own pid file');
    } finally {
      await first.cleanup();
    }
  });

  it('R-X13 a pid file left by a dead process is replaced', { timeout: 60_000 }, async () => {
    const dead = spawn(process.execPath, ['-e', '']);
    await once(dead, 'exit');
    const dir = await mkdtemp(join(tmpdir(), 'poplar-stale-'));
    await writeFile(join(dir, 'poplar.pid'), `${dead.pid}\n`);
    const p = await startPoplar({ dataDir: dir });
    try {
      assert.equal((await readFile(join(dir, 'poplar.pid'), 'utf8')).trim(), String(p.child.pid));
    } finally {
      await p.cleanup();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('R-X13 of two serves started at once on one data directory exactly one runs', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'poplar-race-'));
    await addUsers(dir, { alice: 'wonderland' });
    const args = ['serve', '--data', dir, '-o', `server.workers=${TEST_WORKERS}`, '-o', 'server.first_run_user=', '-o', 'pop3.listen=127.0.0.1:0', '-o', 'pop3.tls_listen=[]'];
    const children = [0, 1].map(() => spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
    const out = children.map(() => '');
    children.forEach((c, i) => c.stdout.setEncoding('utf8').on('data', (d: string) => (out[i] += d)));
    try {
      const exits = children.map((c) => once(c, 'exit'));
      const timeout = new Promise<['still running']>((r) => setTimeout(() => r(['still running']), 10_000));
      const [firstExit] = (await Promise.race([...exits, timeout])) as [number | null | string];
      assert.equal(typeof firstExit, 'number', 'one of them exits by itself');
      assert.notEqual(firstExit, 0);
      // The other one got past the data directory's lock: it listens (the loser exits before that).
      await waitFor(() => out.some((o) => o.includes('"event":"listening"')), 10_000, 'a server listening');
      const running = children.filter((c) => c.exitCode === null);
      assert.equal(running.length, 1, 'one server keeps running');
      await waitFor(() => existsSync(join(dir, 'poplar.pid')));
      assert.equal((await readFile(join(dir, 'poplar.pid'), 'utf8')).trim(), String(running[0]!.pid));
    } finally {
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });
});

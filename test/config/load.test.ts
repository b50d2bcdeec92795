import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../../src/errors.js';
import { loadConfig, parseListen, type Config } from '../../src/config/load.js';
import { configKeys } from '../../src/config/keys.js';

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

/** Every test's files live under one folder, removed when the file's tests end. */
const root = mkdtempSync(join(tmpdir(), 'poplar-config-'));
after(() => rmSync(root, { recursive: true, force: true }));

function configFile(text: string): string {
  const dir = mkdtempSync(join(root, 'case-'));
  const file = join(dir, 'poplar.toml');
  writeFileSync(file, text);
  return file;
}

describe('loadConfig', () => {
  it('gives every key its default without a file', () => {
    const c = loadConfig();
    assert.equal(c.server.data_dir, '/var/lib/poplar');
    assert.equal(c.server.first_run_user, 'demo');
    assert.deepEqual(c.pop3.listen, ['0.0.0.0:110']);
    assert.equal(c.pop3.max_command_length, 512);
    assert.equal(c.pop3.timeout_unauthenticated, 60);
    assert.equal(c.pop3.timeout_authenticated, 1800);
    assert.equal(c.pop3.lock_mode, 'snapshot');
    assert.equal(c.pop3.last_command, false);
    assert.equal(c.pop3.max_bad_commands, 20);
    assert.equal(c.pop3.max_auth_failures, 3);
    assert.equal(c.pop3.hostname, hostname());
    assert.equal(c.auth.users_file, '/var/lib/poplar/users');
    assert.equal(c.auth.password_scheme, 'scrypt');
    assert.equal(c.auth.scrypt_cost, 15);
    assert.equal(c.storage.backend, 'maildir');
    assert.equal(c.storage.maildir_path, '/var/lib/poplar/mail/%u');
    assert.equal(c.log.level, 'info');
  });

  it('reads a TOML file and resolves relative paths against its directory', () => {
    const file = configFile('[server]\ndata_dir = "state"\n[pop3]\nlisten = ["127.0.0.1:1110", "[::1]:1110"]\nhostname = "pop.example"\n');
    const c = loadConfig({ file });
    const dir = resolve(file, '..');
    assert.equal(c.server.data_dir, join(dir, 'state'));
    assert.equal(c.auth.users_file, join(dir, 'state', 'users'));
    assert.equal(c.storage.maildir_path, join(dir, 'state', 'mail', '%u'));
    assert.deepEqual(c.pop3.listen, ['127.0.0.1:1110', '[::1]:1110']);
    assert.equal(c.pop3.hostname, 'pop.example');
  });

  it('expands {data_dir} in users_file and maildir_path', () => {
    const file = configFile('[auth]\nusers_file = "{data_dir}/etc/passwd"\n[storage]\nmaildir_path = "/srv/mail/%u"\n');
    const c = loadConfig({ file, dataDir: '/data' });
    assert.equal(c.auth.users_file, '/data/etc/passwd');
    assert.equal(c.storage.maildir_path, '/srv/mail/%u');
  });

  it('R-X7 R-X10 every default path has {data_dir} expanded (regression: policy.state_dir was left literal, so a folder named "{data_dir}" appeared in the working directory)', () => {
    const c = loadConfig({ file: configFile(''), dataDir: '/data' });
    assert.doesNotMatch(JSON.stringify(c), /\{data_dir\}/);
    assert.equal(c.policy.state_dir, '/data/policy-state');
  });

  it('issue #13 the keys the schema marks as paths are the keys expanded: {data_dir} and relative paths in each, in no other key', () => {
    const paths = [...configKeys().values()].filter((k) => k.path && k.dotted !== 'server.data_dir');
    assert.ok(paths.length >= 8, 'the schema marks the path keys');
    const at = (c: Config, dotted: string): unknown => (c as unknown as Record<string, Record<string, unknown>>)[dotted.split('.')[0]!]![dotted.split('.')[1]!];
    const expanded = loadConfig({ dataDir: '/data', overrides: [...paths.map((k) => `${k.dotted}={data_dir}/${k.key}`), 'pop3.greeting={data_dir}'] });
    for (const k of paths) assert.equal(at(expanded, k.dotted), `/data/${k.key}`, k.dotted);
    assert.equal(expanded.pop3.greeting, '{data_dir}', 'a key not marked as a path is left as written');
    const relative = loadConfig({ dataDir: '/data', overrides: paths.map((k) => `${k.dotted}=rel/${k.key}`) });
    for (const k of paths) assert.equal(at(relative, k.dotted), resolve('rel', k.key), k.dotted);
    const off = loadConfig({ dataDir: '/data', overrides: ['server.pid_file=', 'tls.client_ca='] });
    assert.deepEqual([off.server.pid_file, off.tls.client_ca], ['', ''], 'an empty path (off) stays empty');
  });

  it('--data and -o paths resolve against the current directory', () => {
    const file = configFile('');
    assert.equal(loadConfig({ file, dataDir: 'here' }).server.data_dir, resolve('here'));
    assert.equal(loadConfig({ file, overrides: ['server.data_dir=there'] }).server.data_dir, resolve('there'));
  });

  it('applies -o overrides as TOML values, else as strings', () => {
    const c = loadConfig({
      overrides: [
        'pop3.last_command=true',
        'pop3.max_command_length=1024',
        'pop3.hostname=pop.example.org',
        'server.first_run_user=',
        'log.level="debug"',
      ],
    });
    assert.equal(c.pop3.last_command, true);
    assert.equal(c.pop3.max_command_length, 1024);
    assert.equal(c.pop3.hostname, 'pop.example.org');
    assert.equal(c.server.first_run_user, '');
    assert.equal(c.log.level, 'debug');
  });

  it('R-S5 a plain string override of pop3.listen becomes a one-element list; a TOML array is taken whole', () => {
    assert.deepEqual(loadConfig({ overrides: ['pop3.listen=127.0.0.1:1110'] }).pop3.listen, ['127.0.0.1:1110']);
    assert.deepEqual(
      loadConfig({ overrides: ['pop3.listen=["127.0.0.1:1110", "[::]:1995"]'] }).pop3.listen,
      ['127.0.0.1:1110', '[::]:1995'],
    );
  });

  it('overrides win over the file, later overrides over earlier ones', () => {
    const file = configFile('[pop3]\nmax_bad_commands = 5\n');
    const c = loadConfig({ file, overrides: ['pop3.max_bad_commands=7', 'pop3.max_bad_commands=9'] });
    assert.equal(c.pop3.max_bad_commands, 9);
  });

  it('rejects unknown keys and sections in the file, with their dotted path', () => {
    const problems = problemsOf(() => loadConfig({ file: configFile('[pop3]\nlisen = ["1.2.3.4:110"]\n[sever]\n') }));
    assert.equal(problems.length, 2);
    assert.match(problems[0]!, /^pop3\.lisen: unknown key \(did you mean "listen"\?\)/);
    assert.match(problems[1]!, /^sever: unknown key/);
  });

  it('rejects unknown override keys and malformed overrides', () => {
    const problems = problemsOf(() => loadConfig({ overrides: ['pop3.nope=1', 'pop3', 'nope.listen=x'] }));
    assert.equal(problems.length, 3);
    assert.match(problems[0]!, /pop3\.nope: unknown key/);
    assert.match(problems[1]!, /expected section\.key=value/);
    assert.match(problems[2]!, /nope\.listen: unknown key/);
  });

  it('R-S2 max_command_length outside 40–1024 is rejected', () => {
    assert.match(problemsOf(() => loadConfig({ overrides: ['pop3.max_command_length=39'] }))[0]!, /^pop3\.max_command_length: /);
    assert.match(problemsOf(() => loadConfig({ overrides: ['pop3.max_command_length=1025'] }))[0]!, /^pop3\.max_command_length: .*1025/);
    assert.equal(loadConfig({ overrides: ['pop3.max_command_length=40'] }).pop3.max_command_length, 40);
    assert.equal(loadConfig({ overrides: ['pop3.max_command_length=1024'] }).pop3.max_command_length, 1024);
  });

  it('R-S8 timeout_authenticated below 600 s is rejected, 600 accepted', () => {
    assert.match(problemsOf(() => loadConfig({ overrides: ['pop3.timeout_authenticated=599'] }))[0]!, /^pop3\.timeout_authenticated: /);
    assert.equal(loadConfig({ overrides: ['pop3.timeout_authenticated=600'] }).pop3.timeout_authenticated, 600);
    assert.match(problemsOf(() => loadConfig({ overrides: ['pop3.timeout_unauthenticated=0'] }))[0]!, /^pop3\.timeout_unauthenticated: /);
  });

  it('R-S3 lock_mode accepts only snapshot and exclusive', () => {
    assert.equal(loadConfig({ overrides: ['pop3.lock_mode=exclusive'] }).pop3.lock_mode, 'exclusive');
    assert.match(problemsOf(() => loadConfig({ overrides: ['pop3.lock_mode=strict'] }))[0]!, /^pop3\.lock_mode: /);
  });

  it('lists every problem at once: types, ranges, listen addresses', () => {
    const file = configFile('[pop3]\nlisten = ["110", "[::1]:99999", "::1:110"]\nlast_command = "yes"\n[auth]\nscrypt_cost = 9\n');
    const problems = problemsOf(() => loadConfig({ file, overrides: ['log.level=loud'] }));
    assert.deepEqual(problems.map((p) => p.split(':')[0]), [
      'pop3.listen[0]',
      'pop3.listen[1]',
      'pop3.listen[2]',
      'pop3.last_command',
      'auth.scrypt_cost',
      'log.level',
    ]);
  });

  it('reports a TOML syntax error with file, line and column', () => {
    const file = configFile('[pop3]\nlisten = = 1\n');
    const problems = problemsOf(() => loadConfig({ file }));
    assert.equal(problems.length, 1);
    assert.ok(problems[0]!.startsWith(`${file}:2:`), problems[0]);
    assert.match(problems[0]!, /TOML syntax error/);
  });

  it('reports a missing config file', () => {
    assert.match(problemsOf(() => loadConfig({ file: '/nonexistent/poplar.toml' }))[0]!, /cannot read config file \(ENOENT\)/);
  });
});

describe('parseListen', () => {
  it('R-S5 parses IPv4, host names and bracketed IPv6', () => {
    assert.deepEqual(parseListen('0.0.0.0:110'), { host: '0.0.0.0', port: 110 });
    assert.deepEqual(parseListen('localhost:1110'), { host: 'localhost', port: 1110 });
    assert.deepEqual(parseListen('[::]:995'), { host: '::', port: 995 });
    assert.deepEqual(parseListen('[2001:db8::1]:0'), { host: '2001:db8::1', port: 0 });
  });

  it('rejects missing ports, bad ports, unbracketed IPv6 and bad hosts', () => {
    for (const bad of ['110', '1.2.3.4', '1.2.3.4:', '1.2.3.4:65536', '1.2.3.4:-1', '::1:110', '[::1]110', '[x]:110', 'bad host:110', ':110']) {
      assert.throws(() => parseListen(bad), Error, bad);
    }
  });
});

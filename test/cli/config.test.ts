import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'smol-toml';
import { poplar } from './run.js';

/** Every test's files live under one folder, removed when the file's tests end. */
const root = mkdtempSync(join(tmpdir(), 'poplar-cli-config-'));
after(() => rmSync(root, { recursive: true, force: true }));

function configFile(text: string): string {
  const file = join(mkdtempSync(join(root, 'case-')), 'poplar.toml');
  writeFileSync(file, text);
  return file;
}

describe('poplar config', () => {
  it('config check says "configuration OK" and exits 0 for a valid file', async () => {
    const r = await poplar(['config', 'check', '--config', configFile('[pop3]\nlisten = ["127.0.0.1:1110"]\n')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'configuration OK\n');
  });

  it('R-S20 config check lists every problem with its key and exits 1', async () => {
    const file = configFile('[pop3]\nmax_command_length = 2000\ntimeout_authenticated = 60\nlisen = []\n[storage]\nbackend = "mbox"\n');
    const r = await poplar(['config', 'check', '--config', file, '-o', 'log.level=loud', '-o', 'pop3.nope=1']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines[0], 'poplar: invalid configuration:');
    const keys = lines.slice(1).map((l) => l.replace(/^ {2}- (-o )?/, '').split(':')[0]);
    assert.deepEqual(keys.sort(), [
      'log.level',
      'pop3.lisen',
      'pop3.max_command_length',
      'pop3.nope',
      'pop3.timeout_authenticated',
      'storage.backend',
    ]);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });

  it('config check reports a TOML syntax error with line and column', async () => {
    const file = configFile('[pop3]\nlast_command = tru\n');
    const r = await poplar(['config', 'check', '--config', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${file}:2:\\d+: TOML syntax error`));
  });

  it('config show prints the effective configuration as TOML', async () => {
    const data = mkdtempSync(join(root, 'show-'));
    const r = await poplar(['config', 'show', '--data', data, '-o', 'pop3.listen=127.0.0.1:1110', '-o', 'pop3.last_command=true']);
    assert.equal(r.code, 0, r.stderr);
    const shown = parse(r.stdout) as Record<string, Record<string, unknown>>;
    assert.deepEqual(shown['pop3']!['listen'], ['127.0.0.1:1110']);
    assert.equal(shown['pop3']!['last_command'], true);
    assert.equal(shown['pop3']!['max_command_length'], 512);
    assert.equal(shown['server']!['data_dir'], data);
    assert.equal(shown['auth']!['users_file'], join(data, 'users'));
  });

  it('R-X19 config show masks ldap.bind_password (a secret key) and shows the rest of [ldap]', async () => {
    const data = mkdtempSync(join(root, 'secret-'));
    const r = await poplar(['config', 'show', '--data', data, '-o', 'auth.directory=ldap', '-o', 'ldap.url=ldaps://ldap.example.org',
      '-o', 'ldap.bind_password=s3cret-service-pw']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes('s3cret-service-pw'), 'the secret is not shown');
    const shown = parse(r.stdout) as Record<string, Record<string, unknown>>;
    assert.equal(shown['ldap']!['bind_password'], '(secret)');
    assert.equal(shown['ldap']!['url'], 'ldaps://ldap.example.org');
    assert.equal(shown['auth']!['directory'], 'ldap');
  });

  it('R-X19 ldap.url must be ldap:// or ldaps:// URLs', async () => {
    const r = await poplar(['config', 'check', '-o', 'ldap.url=http://ldap.example.org']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ldap\.url: "http:\/\/ldap\.example\.org": expected ldap:\/\/ or ldaps:\/\//);
  });

  it('usage errors print "poplar: ..." and exit non-zero', async () => {
    const r = await poplar(['user', 'add']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^poplar: missing required argument 'name'/);
    const u = await poplar(['frobnicate']);
    assert.notEqual(u.code, 0);
    assert.match(u.stderr, /^poplar: unknown command 'frobnicate'/);
  });
});

describe('reload metadata', () => {
  it('R-S20 every key is applied by a reload or listed once as needing a restart, and the generated doc says which', async () => {
    const { configKeys } = await import('../../src/config/keys.js');
    const { RESTART_KEYS } = await import('../../src/config/restart-keys.js');
    const { renderConfigDoc } = await import('../../src/config/docgen.js');
    const keys = configKeys();
    for (const k of Object.keys(RESTART_KEYS)) assert.ok(keys.has(k), `${k} is a key`);
    const restart = [...keys.values()].filter((k) => k.restart !== undefined).map((k) => k.dotted);
    assert.deepEqual(restart.sort(), Object.keys(RESTART_KEYS).sort());
    for (const k of ['pop3.listen', 'pop3.tls_listen', 'lmtp.listen', 'server.metrics_listen']) assert.ok(restart.includes(k), k);
    for (const k of ['tls.client_ca', 'auth.mechanisms', 'oauth.issuers', 'auth.trusted_networks', 'log.level']) assert.ok(!restart.includes(k), k);
    const doc = renderConfigDoc();
    const row = (dotted: string): string => doc.split('\n').find((l) => l.startsWith(`| \`${dotted}\``)) ?? '';
    assert.match(row('pop3.listen'), /\*\*Needs a restart\*\*/);
    assert.doesNotMatch(row('tls.client_ca'), /Needs a restart/);
  });
});

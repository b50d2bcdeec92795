/** R-X13 packaging: the systemd unit is valid for systemd itself (`systemd-analyze verify`). */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

it('R-X13 packaging/poplar.service passes systemd-analyze verify', async () => {
  const r = await run('systemd-analyze', ['verify', 'packaging/poplar.service']).catch((e: { code?: string | number; stderr?: string }) => {
    if (e.code === 'ENOENT') throw new Error('systemd-analyze is not installed: apt-get install systemd');
    return { stdout: '', stderr: e.stderr ?? String(e) };
  });
  assert.equal(r.stderr.trim(), '', r.stderr);
});

it('R-S20 the example production config packaging/poplar.toml passes poplar config check', async () => {
  const { poplar } = await import('../cli/run.js');
  const r = await poplar(['config', 'check', '--config', 'packaging/poplar.toml']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'configuration OK\n');
});

/** `Key=value` lines of the unit, by key (a key may repeat). */
function unitKeys(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) keys.set(m[1]!, [...(keys.get(m[1]!) ?? []), m[2]!]);
  }
  return keys;
}

it('R-X13 packaging/poplar.service agrees with docs/operations.md and packaging/poplar.toml: service user, config path, writable paths', async () => {
  const { readFile } = await import('node:fs/promises');
  const { loadConfig } = await import('../../src/config/load.js');
  const unit = unitKeys(await readFile('packaging/poplar.service', 'utf8'));
  const page = await readFile('docs/operations.md', 'utf8');
  assert.deepEqual(unit.get('User'), ['poplar']);
  assert.deepEqual(unit.get('Group'), ['poplar']);
  assert.ok(page.includes('adduser --system --group --shell /usr/sbin/nologin poplar'), 'the page creates the unit\'s user');
  const exec = unit.get('ExecStart')![0]!;
  assert.match(exec, /(^|\/|\s)poplar serve --config \/etc\/poplar\/poplar\.toml$/);
  assert.ok(page.includes('--config /etc/poplar/poplar.toml'), 'the page\'s admin commands use the unit\'s config');
  const { bin } = JSON.parse(await readFile('package.json', 'utf8')) as { bin: Record<string, string> };
  assert.ok('poplar' in bin, 'the unit runs the package\'s bin');

  // Every path the example configuration writes is writable in the sandbox.
  const writable = [...(unit.get('ReadWritePaths') ?? []), ...(unit.get('StateDirectory') ?? []).map((d) => `/var/lib/${d}`)];
  assert.deepEqual(unit.get('ProtectSystem'), ['strict']);
  const c = loadConfig({ file: 'packaging/poplar.toml' });
  const written = [c.server.data_dir, c.server.pid_file, c.auth.users_file, c.policy.users_file, c.policy.state_dir, c.storage.maildir_path];
  for (const path of written) {
    assert.ok(writable.some((w) => path === w || path.startsWith(`${w}/`)), `${path} is not under ${writable.join(', ')}`);
  }
  for (const w of writable) assert.ok(page.includes(w), `the page names the writable path ${w}`);
});

it('R-X13 docs/operations.md names every lock and marker file the Maildir store and the server keep', async () => {
  const { readFile } = await import('node:fs/promises');
  const page = await readFile('docs/operations.md', 'utf8');
  const store = await import('../../src/storage/maildir/maildir-store.js');
  const sessions = await import('../../src/storage/maildir/maildir-sessions.js');
  const uidlist = await import('../../src/storage/maildir/maildir-uidlist.js');
  const { loadConfig } = await import('../../src/config/load.js');
  const pidFile = loadConfig({ file: 'packaging/poplar.toml' }).server.pid_file.split('/').pop()!;
  for (const name of [store.SESSION_LOCK_FILE, store.UIDLIST_LOCK_FILE, sessions.EXPIRE_LOCK_FILE, uidlist.UIDLIST_FILE, 'poplar-session.', pidFile]) {
    assert.ok(page.includes(`\`${name}`), `docs/operations.md does not name ${name}`);
  }
});

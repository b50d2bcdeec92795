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

/** `poplar quota set|get|list` (R-S16, R-X10): per-user overrides in the policy file, shown with usage. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { addUsers } from '../helpers/poplar-process.js';
import { poplar } from './run.js';

it('R-S16 quota set/get/list: per-user overrides over the server default, "default" removes one', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'poplar-quota-'));
  try {
    await addUsers(dir, { alice: 'a', bob: 'b' });
    const q = (...args: string[]) => poplar(['quota', ...args, '--data', dir, '-o', 'quota.bytes=1000']);
    assert.match((await q('get', 'alice')).stdout, /^alice\tbytes 0\/1000\tmessages 0\/unlimited\t0\.0%\n$/);
    const set = await q('set', 'alice', '--bytes', '2K', '--messages', '5');
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /^alice\tbytes 0\/2048\tmessages 0\/5\t0\.0%$/m);
    assert.match(await readFile(join(dir, 'user-policy.toml'), 'utf8'), /\[alice\]\nquota_bytes = 2048\nquota_messages = 5\n/);
    assert.deepEqual((await q('list')).stdout.split('\n').filter(Boolean).map((l) => l.split('\t')[1]), ['bytes 0/2048', 'bytes 0/1000']);
    await q('set', 'alice', '--bytes', 'default');
    assert.match((await q('get', 'alice')).stdout, /bytes 0\/1000\tmessages 0\/5/);
    const bad = await q('set', 'alice', '--bytes', 'lots');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid size "lots"/);
    assert.equal((await q('set', 'nobody', '--bytes', '1')).code, 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it('R-X10 quota set --download-per-day: a per-user daily download limit in the policy file, shown by quota get', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'poplar-quota-'));
  try {
    await addUsers(dir, { alice: 'a', bob: 'b' });
    const q = (...args: string[]) => poplar(['quota', ...args, '--data', dir, '-o', 'policy.download_bytes_per_day=1000']);
    assert.match((await q('get', 'bob')).stdout, /^bob\tbytes 0\/unlimited\tmessages 0\/unlimited\tdownload 1000\/day\n$/);
    const set = await q('set', 'alice', '--download-per-day', '500M');
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /^alice\t.*\tdownload 524288000\/day$/m);
    assert.match(await readFile(join(dir, 'user-policy.toml'), 'utf8'), /\[alice\]\ndownload_bytes_per_day = 524288000\n/);
    assert.match((await q('set', 'alice', '--download-per-day', '0')).stdout, /^alice\tbytes 0\/unlimited\tmessages 0\/unlimited\n$/, '0: unlimited');
    await q('set', 'alice', '--download-per-day', 'default');
    assert.match((await q('get', 'alice')).stdout, /download 1000\/day/);
    assert.equal((await q('set', 'alice', '--download-per-day', 'lots')).code, 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it('R-S16 R-S20 TOML quota.bytes = "100M" is accepted and means what quota set --bytes 100M means (regression: the config file refused it)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'poplar-quota-'));
  try {
    await addUsers(dir, { alice: 'a', bob: 'b' });
    const file = join(dir, 'poplar.toml');
    await writeFile(file, '[quota]\nbytes = "100M"\n[policy]\ndownload_bytes_per_day = "1G"\n');
    const show = await poplar(['config', 'show', '--config', file, '--data', dir]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /^bytes = 104857600$/m);
    assert.match(show.stdout, /^download_bytes_per_day = 1073741824$/m);
    const set = await poplar(['quota', 'set', 'bob', '--bytes', '100M', '--data', dir]);
    assert.equal(set.code, 0, set.stderr);
    const list = await poplar(['quota', 'list', '--config', file, '--data', dir]);
    assert.deepEqual(list.stdout.trim().split('\n').map((l) => l.split('\t')[1]), ['bytes 0/104857600', 'bytes 0/104857600']);
    assert.match((await poplar(['quota', 'get', 'alice', '--data', dir, '-o', 'quota.bytes=2K'])).stdout, /bytes 0\/2048/, '-o reads sizes too');
    await writeFile(file, '[quota]\nbytes = "lots"\n');
    const bad = await poplar(['config', 'check', '--config', file]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /quota\.bytes: expected a size in octets, or a number with K, M or G .*\(got "lots"\)/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

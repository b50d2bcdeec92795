/**
 * R-S13: the server secret (`<data dir>/server-secret`, cli/compose.ts loadServerSecret) keys the
 * made-up SCRAM salt of an unknown user, so every process of one server must use the same one. The
 * workers of a first start on a new data directory all create it at the same moment: one wins and
 * the others read the winner's (before, each kept its own, and an unknown user's salt differed
 * between workers: a way to tell unknown users from real ones).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { loadServerSecret } from '../../src/cli/compose.js';
import { runNode } from '../helpers/node-snippet.js';

const COMPOSE_MODULE = new URL('../../src/cli/compose.js', import.meta.url).href;

describe('R-S13 the server secret', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poplar-secret-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('R-S13 processes creating it at the same moment on a new data directory all get one secret', async () => {
    const data = join(dir, 'data');
    // Each process waits for a common instant, so the creations overlap.
    const at = Date.now() + 1500;
    const snippet = `
      const { loadServerSecret } = await import(${JSON.stringify(COMPOSE_MODULE)});
      await new Promise((r) => setTimeout(r, ${at} - Date.now()));
      console.log((await loadServerSecret(${JSON.stringify(data)})).toString('hex'));`;
    const secrets = (await Promise.all(Array.from({ length: 6 }, () => runNode(snippet)))).map((s) => s.trim());
    assert.equal(secrets[0]!.length, 64);
    assert.equal(new Set(secrets).size, 1, `one secret for all: ${secrets.join(' ')}`);
    assert.equal((await readFile(join(data, 'server-secret'))).toString('hex'), secrets[0]);
    assert.deepEqual(await readdir(data), ['server-secret'], 'no private file left behind');
    assert.equal((await stat(join(data, 'server-secret'))).mode & 0o777, 0o600);
  });

  it('R-S13 a whole secret is kept across starts; a short one left by an older version is replaced', async () => {
    const first = await loadServerSecret(dir);
    assert.ok((await loadServerSecret(dir)).equals(first), 'the same on the next start');
    await writeFile(join(dir, 'server-secret'), 'short');
    const replaced = await loadServerSecret(dir);
    assert.equal(replaced.length, 32);
    assert.ok((await loadServerSecret(dir)).equals(replaced));
  });
});

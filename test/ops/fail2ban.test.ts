/**
 * R-X13: the fail2ban filter shipped in packaging/ matches the failed-login lines a real server
 * writes, and nothing else. The log comes from a live session; `fail2ban-regex` (Debian's
 * fail2ban package, installed by .ci/run) is the judge.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Pop3Client } from '../helpers/pop3-client.js';
import { needProgram } from '../helpers/external.js';
import { waitFor, withServer } from '../helpers/test-server.js';

const run = promisify(execFile);
const FILTER = join(process.cwd(), 'packaging/fail2ban/filter.d/poplar.conf');

it('R-X13 fail2ban-regex matches every failed login line of a real session and nothing else', { skip: needProgram('fail2ban-regex', 'fail2ban') }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'poplar-f2b-'));
  try {
    await withServer({}, async (t) => {
      const c = await Pop3Client.connect(t.port);
      await c.login('alice', 'wrong-1');
      await c.login('nobody', 'wrong-2');
      await c.login('alice', 'wonderland');
      await c.cmd('QUIT');
      await waitFor(() => t.logs.some((l) => l.event === 'session_end'));
      const log = join(dir, 'poplar.log');
      await writeFile(log, t.logText());
      const { stdout } = await run('fail2ban-regex', ['--print-all-matched', log, FILTER], { timeout: 60_000 });
      const failures = t.logs.filter((l) => l.event === 'auth_failed').length;
      assert.equal(failures, 2);
      assert.match(stdout, new RegExp(`Lines: ${t.logText().trim().split('\n').length} lines, 0 ignored, ${failures} matched`));
      assert.match(stdout, /127\.0\.0\.1/);
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

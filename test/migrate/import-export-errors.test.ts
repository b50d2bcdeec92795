/**
 * R-X15 the expected failures of `poplar import` and `poplar export` (a missing, unreadable or
 * wrong source, a target that exists or whose parent is missing, an unknown user) end with exit
 * status 1 and one line on stderr, `poplar: <what, naming the path>`, never a stack trace, and
 * nothing is imported or written.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { MAIN, poplar, type Run } from '../cli/run.js';
import { addUsers } from '../helpers/poplar-process.js';

const MBOX = 'From someone@example.org Sat Jan  3 01:05:34 2004\nSubject: one\n\nbody\n';

describe('import and export: expected errors are one line', () => {
  let work: string;
  let data: string;
  const cli = (args: readonly string[]): Promise<Run> => poplar([...args, '--data', data, '-o', 'server.first_run_user=']);
  /** Exit status 1 and exactly one stderr line, `poplar: ` and then `message`. */
  const oneLine = (r: Run, message: RegExp): void => {
    assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at |unexpected error/, 'no stack trace');
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, new RegExp(`^poplar: ${message.source}$`));
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'poplar-migrate-errors-'));
    data = join(work, 'data');
    await mkdir(data);
    await addUsers(data, { alice: 'wonderland', bob: 'builder' });
    await writeFile(join(work, 'ok.mbox'), MBOX);
    const r = await cli(['import', '--user', 'alice', join(work, 'ok.mbox')]);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('R-X15 import: missing source, not a Maildir, not an mbox, unknown user', async () => {
    const missing = join(work, 'nope');
    for (const format of [[], ['--format', 'mbox'], ['--format', 'maildir']]) {
      // Regression: with --format the missing source reached the user as a stack trace.
      oneLine(await cli(['import', '--user', 'bob', ...format, missing]), new RegExp(`cannot read ${missing}: no such file or directory`));
    }
    const dir = join(work, 'plain-dir');
    await mkdir(dir);
    oneLine(await cli(['import', '--user', 'bob', dir]), /.*plain-dir is a directory without cur\/ or new\/: not a Maildir/);
    oneLine(await cli(['import', '--user', 'bob', '--format', 'maildir', dir]), /.*plain-dir is a directory without cur\/ or new\/: not a Maildir/);
    oneLine(await cli(['import', '--user', 'bob', '--format', 'mbox', dir]), /.*plain-dir is not an mbox file: a directory/);
    oneLine(await cli(['import', '--user', 'bob', '--format', 'maildir', join(work, 'ok.mbox')]), /.*ok\.mbox is not a Maildir: not a directory/);
    // Regression: a single message file (no `From ` line) was "imported" as 0 messages, exit 0.
    await writeFile(join(work, 'one.eml'), 'Subject: not an mbox\n\nbody\n');
    oneLine(await cli(['import', '--user', 'bob', join(work, 'one.eml')]), /.*one\.eml is not an mbox file: it does not start with a "From " line/);
    oneLine(await cli(['import', '--user', 'nobody-here', join(work, 'ok.mbox')]), /no such user "nobody-here"/);
    assert.equal((await readdir(join(data, 'mail')).catch((): string[] => [])).includes('bob'), false, 'nothing was imported for bob');
  });

  it('R-X15 import: a source the user running poplar cannot read', { skip: process.getuid?.() === 0 ? false : 'needs root to run poplar as nobody' }, async () => {
    const secret = join(work, 'secret.mbox');
    await writeFile(secret, MBOX, { mode: 0o600 });
    await chmod(work, 0o755);
    await chmod(data, 0o755);
    await chmod(join(data, 'users'), 0o644);
    try {
      const run = promisify(execFile);
      const args = [MAIN, 'import', '--user', 'bob', secret, '--data', data, '-o', 'server.first_run_user='];
      const r = await run(process.execPath, args, { uid: 65534, gid: 65534 }).then(
        (ok) => ({ code: 0, stdout: ok.stdout, stderr: ok.stderr }),
        (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
      );
      oneLine(r, new RegExp(`cannot read ${secret}: permission denied`));
    } finally {
      await chmod(join(data, 'users'), 0o600);
      await chmod(data, 0o700);
    }
  });

  it('R-X15 export: missing parent, parent not a directory, target exists, unknown maildrop', async () => {
    for (const format of ['maildir', 'mbox']) {
      const target = join(work, 'no-such-dir', `out-${format}`);
      // Regression: a missing parent printed "unexpected error" and a stack trace.
      oneLine(await cli(['export', '--user', 'alice', '--format', format, target]), new RegExp(`cannot create ${target}: its parent directory does not exist`));
      const underFile = join(work, 'ok.mbox', 'out');
      oneLine(await cli(['export', '--user', 'alice', '--format', format, underFile]), new RegExp(`cannot create ${underFile}: not a directory`));
      const exists = join(work, `exists-${format}`);
      assert.equal((await cli(['export', '--user', 'alice', '--format', format, exists])).code, 0);
      oneLine(await cli(['export', '--user', 'alice', '--format', format, exists]), new RegExp(`${exists} exists already`));
    }
    oneLine(await cli(['export', '--user', 'nobody-here', '--format', 'mbox', join(work, 'x.mbox')]), /no maildrop "nobody-here"/);
    assert.deepEqual((await readdir(work)).filter((n) => n.startsWith('no-such') || n === 'x.mbox'), [], 'nothing was written');
  });
});

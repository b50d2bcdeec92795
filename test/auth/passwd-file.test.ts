import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, rmSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PasswdFile, PasswdFileError } from '../../src/auth/passwd-file.js';
import { userNameProblem as nameProblem } from '../../src/user-name.js';

/** Every test's files live under one folder, removed when the file's tests end. */
const root = mkdtempSync(join(tmpdir(), 'poplar-passwd-'));
after(() => rmSync(root, { recursive: true, force: true }));

function tempFile(text?: string): string {
  const file = join(mkdtempSync(join(root, 'case-')), 'users');
  if (text !== undefined) writeFileSync(file, text);
  return file;
}

const DOVECOT = [
  '# users for example.org',
  '',
  'alice:{SHA512-CRYPT}$6$salt$hash:1000:1000:Alice Liddell:/home/alice:/bin/sh:userdb_mail=maildir:~/Maildir quota_rule=*:storage=1G',
  'bob:{SCRYPT}$scrypt$ln=14,r=8,p=1$c2FsdA$aGFzaA::::::poplar_grants=shared,sales',
  'carol:{PLAIN}x',
  'dave',
  'alice:{PLAIN}second-line-ignored',
  '',
].join('\n');

const rejectsWith = (code: string) => (err: unknown) => err instanceof PasswdFileError && err.code === code;

describe('PasswdFile', () => {
  it('R-X8 reads Dovecot passwd-file lines, with missing trailing fields and extra fields', async () => {
    const dir = new PasswdFile(tempFile(DOVECOT));
    assert.deepEqual(await dir.lookup('alice'), { name: 'alice', password: '{SHA512-CRYPT}$6$salt$hash', grants: [] });
    assert.deepEqual(await dir.lookup('bob'), {
      name: 'bob',
      password: '{SCRYPT}$scrypt$ln=14,r=8,p=1$c2FsdA$aGFzaA',
      grants: ['shared', 'sales'],
    });
    assert.deepEqual(await dir.lookup('dave'), { name: 'dave', password: '', grants: [] });
    assert.equal(await dir.lookup('# users for example.org'), undefined);
    assert.equal(await dir.lookup('nobody'), undefined);
    assert.deepEqual((await dir.list()).map((u) => u.name), ['alice', 'bob', 'carol', 'dave']);
  });

  it('a missing file means no users', async () => {
    const dir = new PasswdFile(join(tempFile(), 'missing'));
    assert.equal(await dir.lookup('alice'), undefined);
    assert.deepEqual(await dir.list(), []);
  });

  it('picks up changes made behind its back without a restart', async () => {
    const file = tempFile('alice:{PLAIN}one\n');
    const dir = new PasswdFile(file, { statIntervalMs: 0 });
    assert.equal((await dir.lookup('alice'))?.password, '{PLAIN}one');
    writeFileSync(file, 'alice:{PLAIN}two\nbob:{PLAIN}three\n');
    assert.equal((await dir.lookup('alice'))?.password, '{PLAIN}two');
    assert.equal((await dir.lookup('bob'))?.password, '{PLAIN}three');
  });

  it('sees users added through another PasswdFile instance (the CLI)', async () => {
    const file = tempFile();
    const server = new PasswdFile(file, { statIntervalMs: 0 });
    assert.equal(await server.lookup('erin'), undefined);
    await new PasswdFile(file).add('erin', '{PLAIN}pw');
    assert.equal((await server.lookup('erin'))?.password, '{PLAIN}pw');
  });

  it('keeps lines and fields it does not change byte for byte, and the file\'s mode', async () => {
    const file = tempFile(DOVECOT);
    chmodSync(file, 0o640);
    const dir = new PasswdFile(file);
    await dir.add('erin', '{SCRYPT}new');
    await dir.setPassword('alice', '{SCRYPT}changed');
    await dir.grant('alice', 'shared');
    await dir.revoke('bob', 'sales');
    const lines = readFileSync(file, 'utf8').split('\n');
    assert.deepEqual(lines, [
      '# users for example.org',
      '',
      'alice:{SCRYPT}changed:1000:1000:Alice Liddell:/home/alice:/bin/sh:userdb_mail=maildir:~/Maildir quota_rule=*:storage=1G poplar_grants=shared',
      'bob:{SCRYPT}$scrypt$ln=14,r=8,p=1$c2FsdA$aGFzaA::::::poplar_grants=shared',
      'carol:{PLAIN}x',
      'dave',
      'alice:{PLAIN}second-line-ignored',
      'erin:{SCRYPT}new',
      '',
    ]);
    assert.equal(statSync(file).mode & 0o777, 0o640);
  });

  it('a users file it creates is 0600', async () => {
    const file = join(tempFile(), 'new', 'users');
    await new PasswdFile(file).add('alice', '{PLAIN}x');
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });

  it('R-K3 grant and revoke manage poplar_grants in the extra fields', async () => {
    const file = tempFile();
    const dir = new PasswdFile(file, { statIntervalMs: 0 });
    await dir.add('frank', '{PLAIN}pw');
    await dir.grant('frank', 'shared');
    await dir.grant('frank', 'sales');
    assert.deepEqual((await dir.lookup('frank'))?.grants, ['shared', 'sales']);
    assert.equal(readFileSync(file, 'utf8'), 'frank:{PLAIN}pw::::::poplar_grants=shared,sales\n');
    await assert.rejects(dir.grant('frank', 'shared'), rejectsWith('ALREADY_GRANTED'));
    await assert.rejects(dir.grant('frank', 'frank'), rejectsWith('ALREADY_GRANTED'));
    await assert.rejects(dir.grant('nobody', 'shared'), rejectsWith('NO_SUCH_USER'));
    await assert.rejects(dir.grant('frank', '../etc'), rejectsWith('INVALID_NAME'));
    await dir.revoke('frank', 'shared');
    await dir.revoke('frank', 'sales');
    assert.deepEqual((await dir.lookup('frank'))?.grants, []);
    assert.equal(readFileSync(file, 'utf8'), 'frank:{PLAIN}pw\n');
    await assert.rejects(dir.revoke('frank', 'sales'), rejectsWith('NOT_GRANTED'));
  });

  it('add refuses an existing user; setPassword and remove refuse an unknown one', async () => {
    const dir = new PasswdFile(tempFile(DOVECOT), { statIntervalMs: 0 });
    await assert.rejects(dir.add('bob', '{PLAIN}x'), rejectsWith('EXISTS'));
    await assert.rejects(dir.setPassword('nobody', '{PLAIN}x'), rejectsWith('NO_SUCH_USER'));
    await assert.rejects(dir.remove('nobody'), rejectsWith('NO_SUCH_USER'));
    await dir.remove('alice');
    assert.equal(await dir.lookup('alice'), undefined);
    assert.deepEqual((await dir.list()).map((u) => u.name), ['bob', 'carol', 'dave']);
  });

  it('validates user and maildrop names', async () => {
    for (const bad of ['', 'a:b', 'a b', 'a\tb', 'a\u0000b', 'a/b', 'a\\b', '.hidden', '#x', 'a,b', 'x'.repeat(256), '\u00e9'.repeat(128)]) {
      assert.notEqual(nameProblem(bad), undefined, JSON.stringify(bad));
    }
    for (const good of ['alice', 'alice@example.org', 'Émile', 'x'.repeat(255), 'a.b-c_d+e']) {
      assert.equal(nameProblem(good), undefined, good);
    }
    await assert.rejects(new PasswdFile(tempFile()).add('a:b', '{PLAIN}x'), rejectsWith('INVALID_NAME'));
  });

  it('R-X8 a line whose name breaks the name rule is no user: skipped with one warning, kept in the file (regression: it reached the store)', async () => {
    const file = tempFile('alice:{PLAIN}a\n-x:{PLAIN}b\nbob|c:{PLAIN}c\ncarol:{PLAIN}d\n');
    const warnings: string[] = [];
    const dir = new PasswdFile(file, { statIntervalMs: 0, warn: (m) => warnings.push(m) });
    assert.equal(await dir.lookup('-x'), undefined);
    assert.equal(await dir.lookup('bob|c'), undefined);
    assert.deepEqual((await dir.list()).map((u) => u.name), ['alice', 'carol']);
    await dir.grant('alice', 'shared');
    assert.deepEqual((await dir.list()).map((u) => u.name), ['alice', 'carol']);
    assert.deepEqual(warnings.map((w) => w.replace(file, 'F')), [
      'F line 2: user "-x" skipped: name starts with ".", "-" or "#"',
      'F line 3: user "bob|c" skipped: name contains "|" (none of : / \\ , * ? " < > | % may appear)',
    ]);
    assert.match(readFileSync(file, 'utf8'), /^-x:\{PLAIN\}b\nbob\|c:\{PLAIN\}c$/m);
  });

  it('R-X8 changes made at the same time through different instances all land (the file lock)', async () => {
    const file = tempFile('alice:{PLAIN}a\n');
    const boxes = Array.from({ length: 12 }, (_, i) => `box${i}`);
    await Promise.all(boxes.map((b) => new PasswdFile(file).grant('alice', b)));
    assert.deepEqual([...((await new PasswdFile(file).lookup('alice'))?.grants ?? [])].sort(), [...boxes].sort());
    assert.deepEqual(readdirSync(dirname(file)), ['users'], 'no lock or temporary file is left behind');
  });
});

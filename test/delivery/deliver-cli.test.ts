/**
 * `poplar deliver --user NAME` (R-X6), the LDA for Postfix's mailbox_command: reads stdin,
 * delivers through the same agent as LMTP, exits with sysexits codes; poplib reads the result.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { poplar } from '../cli/run.js';
import { addUsers, startPoplar } from '../helpers/poplar-process.js';
import { popFetch } from '../helpers/python-clients.js';

describe('poplar deliver', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poplar-deliver-'));
    await addUsers(dir, { alice: 'wonderland' });
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const deliver = (args: string[], input: string, extra: string[] = []) =>
    poplar(['deliver', ...args, '--data', dir, ...extra.flatMap((o) => ['-o', o])], { input });

  it('R-X6 poplar deliver stores stdin (exit 0); poplib reads it byte for byte with exact sizes and increasing uids', async () => {
    const lf = 'From: postfix@example.org\nSubject: from a pipe\n\n.dot line\nbare LF body, 8-bit: \u00e9\n';
    const r1 = await deliver(['--user', 'alice', '-f', 'sender@example.org', '-a', 'alice@example.org'], lf);
    assert.equal(r1.code, 0, r1.stderr);
    const r2 = await deliver(['--user', 'alice'], 'Subject: second\r\n\r\nx\r\n');
    assert.equal(r2.code, 0, r2.stderr);
    const p = await startPoplar({ dataDir: dir, users: {} });
    try {
      const got = await popFetch(p.pop3Port, 'alice', 'wonderland');
      assert.equal(got.messages.length, 2);
      const text = got.messages[0]!.bytes.toString('utf8');
      const head = /^Return-Path: <sender@example\.org>\r\nDelivered-To: alice@example\.org\r\nReceived: by \S+ \(poplar\) with local id [0-9a-f]+\r\n\tfor <alice@example\.org>; [^\r]+\r\n/.exec(text);
      assert.ok(head, text.slice(0, 300));
      assert.equal(text.slice(head[0].length), lf.replace(/\n/g, '\r\n'), 'the body as sent, with CRLF line ends on the wire');
      got.messages.forEach((m, i) => {
        assert.equal(m.octets, m.bytes.length);
        assert.equal(got.list[i], `${i + 1} ${m.bytes.length}`);
      });
      assert.match(got.messages[1]!.bytes.toString(), /^Return-Path: <>\r\nDelivered-To: alice\r\n/);
      const uids = got.uidl.map((l) => Number(l.split(' ')[1]));
      assert.ok(uids[1]! > uids[0]!);
    } finally {
      await p.cleanup();
    }
  });

  it('R-X6 exit codes: 67 for an unknown user, 73 over quota ("reject"), 75 over quota ("defer") and when storage fails', async () => {
    const unknown = await deliver(['--user', 'nobody'], 'Subject: x\n\nx\n');
    assert.equal(unknown.code, 67);
    assert.match(unknown.stderr, /no such user "nobody"/);
    assert.equal((await deliver(['--user', 'alice'], 'Subject: 1\n\nfirst\n', ['quota.messages=1'])).code, 0);
    assert.equal((await deliver(['--user', 'alice'], 'Subject: 2\n\nsecond\n', ['quota.messages=1'])).code, 73);
    const deferred = await deliver(['--user', 'alice'], 'Subject: 2\n\nsecond\n', ['quota.messages=1', 'quota.over_quota=defer']);
    assert.equal(deferred.code, 75);
    assert.match(deferred.stderr, /over quota/);
    await writeFile(join(dir, 'not-a-dir'), 'x');
    const broken = await deliver(['--user', 'alice'], 'Subject: 3\n\nthird\n', [`storage.maildir_path=${join(dir, 'not-a-dir', '%u')}`]);
    assert.equal(broken.code, 75, broken.stderr);
    assert.match(broken.stderr, /try again later/);
  });
});

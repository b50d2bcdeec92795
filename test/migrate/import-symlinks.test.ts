/**
 * Regression tests for issue #12: `poplar import` followed symbolic links in its source, so a
 * user's Maildir holding `cur/x -> /etc/poplar/tls.key` (or an mbox that is such a link) had the
 * target copied into the maildrop, where POP3 served it. R-X15 import never follows a link: a
 * linked message file is left out and logged, a linked mbox or Maildir folder is refused.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { importMail } from '../../src/migrate/import.js';
import { ImportSourceError } from '../../src/migrate/maildir-source.js';
import { createLogger } from '../../src/observability/logger.js';
import type { MaildropSnapshot } from '../../src/storage/mail-store.js';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';

const SECRET = 'From x\nSubject: SECRET-KEY-MATERIAL\n\nprivate\n';

function captureLogger(): { logger: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger('info', sink), lines };
}

async function bodies(snap: MaildropSnapshot): Promise<string> {
  let all = '';
  for (const m of snap.messages) for await (const c of await snap.read(m.id)) all += Buffer.from(c as Buffer).toString();
  return all;
}

describe('import from a source with symbolic links (issue #12)', () => {
  let dir: string;
  let secret: string;
  let store: MaildirStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poplar-import-links-'));
    secret = join(dir, 'tls.key');
    await writeFile(secret, SECRET);
    store = new MaildirStore({ path: (m) => join(dir, 'mail', m) });
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('R-X15 R-X7 importing a Maildir leaves linked message files out, logs each once, and copies no target', async () => {
    const src = join(dir, 'src');
    for (const d of ['cur', 'new', 'tmp']) await mkdir(join(src, d), { recursive: true });
    await writeFile(join(src, 'cur', '1700000001.M1P1.host:2,S'), 'Subject: real\n\nmine\n');
    await symlink(secret, join(src, 'cur', '1700000002.M2P1.host:2,S'));
    await symlink(secret, join(src, 'new', '1700000003.M3P1.host'));
    const { logger, lines } = captureLogger();
    const r = await importMail(store, 'alice', src, 'maildir', logger);
    assert.equal(r.imported, 1);
    const snap = await store.open('alice', { exclusive: false });
    const text = await bodies(snap);
    await snap.release();
    assert.match(text, /Subject: real/);
    assert.doesNotMatch(text, /SECRET/);
    const skipped = lines.filter((l) => l['event'] === 'import_symlink_skipped').map((l) => String(l['path']));
    assert.equal(skipped.length, 2, skipped.join(', '));
  });

  it('R-X15 R-X7 importing a Maildir whose cur/ is a link is refused with a one-line error', async () => {
    const src = join(dir, 'src');
    await mkdir(join(src, 'new'), { recursive: true });
    await mkdir(join(dir, 'elsewhere'));
    await writeFile(join(dir, 'elsewhere', '1700000001.M1P1.host:2,S'), SECRET);
    await symlink(join(dir, 'elsewhere'), join(src, 'cur'));
    const { logger } = captureLogger();
    await assert.rejects(importMail(store, 'alice', src, 'maildir', logger), (err: unknown) => {
      assert.ok(err instanceof ImportSourceError, String(err));
      assert.match(err.message, /symbolic link/);
      return true;
    });
    const snap = await store.open('alice', { exclusive: false });
    assert.equal(snap.messages.length, 0);
    await snap.release();
  });

  it('R-X15 R-X7 importing an mbox that is a link is refused and copies nothing', async () => {
    const mbox = join(dir, 'inbox.mbox');
    await symlink(secret, mbox);
    const { logger } = captureLogger();
    await assert.rejects(importMail(store, 'alice', mbox, 'mbox', logger), (err: unknown) => {
      assert.ok(err instanceof ImportSourceError, String(err));
      return true;
    });
    const snap = await store.open('alice', { exclusive: false });
    assert.equal(snap.messages.length, 0);
    await snap.release();
  });
});

/**
 * R-X11 on Maildir: carried-over UIDLs live as `U <uid> <uidl>` records in poplar-uidlist. They
 * survive a compaction of the file and are read by a fresh process.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { it } from 'node:test';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import { UIDLIST_FILE } from '../../src/storage/maildir/maildir-uidlist.js';
import { MAILDIR_STORE_MODULE } from '../helpers/node-snippet.js';


it('R-X11 carried UIDLs survive a uidlist compaction and are read by another process', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'poplar-uidl-'));
  const root = join(dir, 'Maildir');
  const store = new MaildirStore({ path: () => root });
  try {
    for (let i = 1; i <= 40; i++) await store.deliver('alice', Buffer.from(`m${i}\r\n`), i % 2 === 0 ? { uidl: `carried-${i}` } : {});
    const snap = await store.open('alice', { exclusive: false });
    await snap.commit({ expunge: snap.messages.slice(0, 36).map((m) => m.id), seen: [] });
    await snap.release();
    await (await store.open('alice', { exclusive: false })).release(); // dead records now outnumber the live: compacted
    const text = await readFile(join(root, UIDLIST_FILE), 'utf8');
    assert.equal(text.split('\n').filter((l) => /^\d+ /.test(l)).length, 4, 'compacted to the 4 live records');
    assert.deepEqual(text.split('\n').filter((l) => l.startsWith('U ')), ['U 38 carried-38', 'U 40 carried-40']);
    const code = `const { MaildirStore } = await import(${JSON.stringify(MAILDIR_STORE_MODULE)});
      const s = await new MaildirStore({ path: () => ${JSON.stringify(root)} }).open('alice', { exclusive: false });
      console.log(JSON.stringify(s.messages.map((m) => [m.uid, m.uidl ?? null]))); await s.release();`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', code]);
    assert.deepEqual(JSON.parse(stdout), [[37, null], [38, 'carried-38'], [39, null], [40, 'carried-40']]);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

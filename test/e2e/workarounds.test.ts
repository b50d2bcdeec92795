/**
 * R-X12 over a real socket: the named client workarounds (`pop3.workarounds`: outlook-no-nuls,
 * oe-ns-eoh) and DELE semantics (`pop3.delete_mode`: expunge or hide), on the memory and the
 * Maildir backends. Sizes must stay exact (R-S4) whatever the workarounds add.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pop3Client, type MultiLine } from '../helpers/pop3-client.js';
import { withServer, type TestServer } from '../helpers/test-server.js';
import type { ClientWorkaround } from '../../src/protocol/dot-stuffing.js';

const WITH_NUL = 'Subject: nul\r\n\r\nbefore\x00after\r\n\x00\r\n';
const HEADERS_ONLY = 'From: a@example.org\r\nSubject: no body, no blank line\r\n';
const NO_NEWLINE = 'Subject: not even a final newline';
const COMPLETE = 'From: b@example.org\r\nSubject: complete\r\n\r\nbody\r\n.dot\r\n';
const BACKENDS = ['memory', 'maildir'] as const;

/** The octets of a RETR body before dot-stuffing, without the terminator (what R-S4's size counts). */
function unstuffed(r: MultiLine): Buffer {
  return Buffer.from(r.raw.subarray(0, r.raw.length - 3).toString('latin1').replace(/(^|\r\n)\./g, '$1'), 'latin1');
}

async function session(t: TestServer): Promise<Pop3Client> {
  const c = await Pop3Client.connect(t.port);
  assert.match(await c.login('alice', 'wonderland'), /^\+OK/);
  return c;
}

/** Asserts STAT, LIST n and RETR's "+OK n octets" all equal the octets RETR sends (R-S4); returns them. */
async function exactSizes(c: Pop3Client, count: number): Promise<MultiLine[]> {
  const retrs: MultiLine[] = [];
  let total = 0;
  for (let n = 1; n <= count; n++) {
    const listed = Number((await c.cmd(`LIST ${n}`)).split(' ')[2]);
    const r = await c.multi(`RETR ${n}`);
    assert.equal(r.status, `+OK ${listed} octets`, `message ${n}`);
    assert.equal(unstuffed(r).length, listed, `R-S4 message ${n}: LIST size = octets sent`);
    total += listed;
    retrs.push(r);
  }
  assert.equal(await c.cmd('STAT'), `+OK ${count} ${total}`);
  return retrs;
}

async function withSeeded(
  backend: (typeof BACKENDS)[number],
  settings: { workarounds?: readonly ClientWorkaround[]; deleteMode?: 'expunge' | 'hide' },
  messages: readonly string[],
  fn: (t: TestServer, maildir: string) => Promise<void>,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'poplar-x12-'));
  try {
    await withServer({ ...(backend === 'memory' ? { store: 'memory' as const } : { maildir: dir }), settings }, async (t) => {
      for (const m of messages) await t.store.deliver('alice', Buffer.from(m, 'latin1'));
      await fn(t, join(dir, 'alice'));
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('R-X12 client workarounds over a socket', () => {
  for (const backend of BACKENDS) {
    it(`R-X12 outlook-no-nuls sends NULs as 0x80 with unchanged sizes (${backend})`, async () => {
      await withSeeded(backend, { workarounds: ['outlook-no-nuls'] }, [WITH_NUL], async (t) => {
        const c = await session(t);
        const [r] = await exactSizes(c, 1);
        assert.equal(unstuffed(r!).toString('latin1'), WITH_NUL.replace(/\x00/g, '\x80'));
        assert.equal(r!.status, `+OK ${Buffer.byteLength(WITH_NUL)} octets`, 'same size as stored');
        assert.equal((await c.multi('TOP 1 1')).raw.indexOf(0), -1, 'TOP too');
        await c.cmd('QUIT');
      });
    });

    it(`R-X12 R-S4 oe-ns-eoh adds the missing end-of-headers line and counts it in every size (${backend})`, async () => {
      const messages = [HEADERS_ONLY, COMPLETE, NO_NEWLINE];
      await withSeeded(backend, { workarounds: ['oe-ns-eoh'] }, messages, async (t) => {
        const c = await session(t);
        const retrs = await exactSizes(c, 3);
        assert.equal(unstuffed(retrs[0]!).toString('latin1'), `${HEADERS_ONLY}\r\n`);
        assert.equal(unstuffed(retrs[1]!).toString('latin1'), COMPLETE, 'a message with a blank line is unchanged');
        assert.equal(unstuffed(retrs[2]!).toString('latin1'), `${NO_NEWLINE}\r\n\r\n`);
        const list = await c.multi('LIST');
        assert.deepEqual(list.lines, [`1 ${HEADERS_ONLY.length + 2}`, `2 ${COMPLETE.length}`, `3 ${NO_NEWLINE.length + 4}`]);
        assert.deepEqual((await c.multi('TOP 1 0')).lines, ['From: a@example.org', 'Subject: no body, no blank line', '']);
        assert.deepEqual((await c.multi('TOP 2 0')).lines, ['From: b@example.org', 'Subject: complete', '']);
        assert.equal(await c.cmd('DELE 1'), '+OK Message 1 deleted');
        assert.equal(await c.cmd('STAT'), `+OK 2 ${COMPLETE.length + NO_NEWLINE.length + 4}`);
        await c.cmd('QUIT');
      });
    });
  }

  it('R-X12 without workarounds NULs are sent and no end-of-headers line is added', async () => {
    await withSeeded('memory', {}, [WITH_NUL, HEADERS_ONLY], async (t) => {
      const c = await session(t);
      const retrs = await exactSizes(c, 2);
      assert.equal(unstuffed(retrs[0]!).toString('latin1'), WITH_NUL);
      assert.equal(unstuffed(retrs[1]!).toString('latin1'), HEADERS_ONLY);
      await c.cmd('QUIT');
    });
  });
});

describe('R-X12 DELE semantics over a socket', () => {
  for (const backend of BACKENDS) {
    it(`R-X12 R-K4 delete_mode expunge (the default): QUIT removes the DELE'd message (${backend})`, async () => {
      await withSeeded(backend, {}, ['Subject: 1\r\n\r\na\r\n', 'Subject: 2\r\n\r\nb\r\n'], async (t) => {
        const c = await session(t);
        const uid2 = (await c.cmd('UIDL 2')).split(' ')[2];
        assert.equal(await c.cmd('DELE 1'), '+OK Message 1 deleted');
        assert.match(await c.cmd('QUIT'), /signing off \(1 message left\)$/);
        await c.closed();
        assert.equal((await t.store.usage('alice')).messages, 1, 'removed from the store');
        const d = await session(t);
        assert.deepEqual((await d.multi('UIDL')).lines, [`1 ${uid2}`]);
        await d.cmd('QUIT');
      });
    });

    it(`R-X12 delete_mode hide: QUIT keeps the message but POP3 never lists it again (${backend})`, async () => {
      const bodies = ['Subject: 1\r\n\r\nread and deleted\r\n', 'Subject: 2\r\n\r\ndeleted unread\r\n', 'Subject: 3\r\n\r\nkept\r\n'];
      await withSeeded(backend, { deleteMode: 'hide' }, bodies, async (t, maildir) => {
        const c = await session(t);
        const uids = (await c.multi('UIDL')).lines.map((l) => l.split(' ')[1]);
        await c.multi('RETR 1');
        assert.equal(await c.cmd('DELE 1'), '+OK Message 1 deleted');
        assert.equal(await c.cmd('DELE 2'), '+OK Message 2 deleted');
        assert.match(await c.cmd('QUIT'), /signing off \(1 message left\)$/);
        await c.closed();
        assert.equal((await t.store.usage('alice')).messages, 3, 'nothing removed from the store');
        const d = await session(t);
        assert.equal(await d.cmd('STAT'), `+OK 1 ${Buffer.byteLength(bodies[2]!)}`);
        assert.deepEqual((await d.multi('UIDL')).lines, [`1 ${uids[2]}`]);
        assert.equal(unstuffed(await d.multi('RETR 1')).toString(), bodies[2]);
        await d.cmd('QUIT');
        await d.closed();
        const later = await t.store.deliver('alice', Buffer.from('Subject: 4\r\n\r\nnew\r\n'));
        assert.ok(later.uid > Math.max(...uids.map(Number)), 'R-S12 hidden uids are not reused');
        if (backend === 'maildir') {
          const cur = await readdir(join(maildir, 'cur'));
          assert.deepEqual(cur.map((n) => n.slice(n.indexOf(':2,') + 3)).sort(), ['S', 'ST', 'T'], 'T on the hidden ones; S on those retrieved');
        }
      });
    });
  }

  it('R-X12 R-K4 delete_mode hide: a session that ends without QUIT hides nothing', async () => {
    await withSeeded('memory', { deleteMode: 'hide' }, ['Subject: 1\r\n\r\na\r\n'], async (t) => {
      const c = await session(t);
      assert.equal(await c.cmd('DELE 1'), '+OK Message 1 deleted');
      c.close();
      const d = await session(t);
      assert.match(await d.cmd('STAT'), /^\+OK 1 /);
      assert.equal(await d.cmd('DELE 1'), '+OK Message 1 deleted');
      assert.match(await d.cmd('RSET'), /^\+OK Maildrop has 1 message/);
      await d.cmd('QUIT');
      await d.closed();
      const e = await session(t);
      assert.match(await e.cmd('STAT'), /^\+OK 1 /, 'RSET unmarked it');
      await e.cmd('QUIT');
    });
  });
});

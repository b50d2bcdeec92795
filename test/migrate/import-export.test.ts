/**
 * Import and export (R-X15) with UIDL continuity (R-X11): a generated Dovecot Maildir with a
 * version 3 `dovecot-uidlist` is imported with `poplar import`, and poplib sees the same UIDL list
 * Dovecot showed (its default `pop3_uidl_format = %08Xu%08Xv`, or the record's P field); mbox
 * `X-UIDL:` headers are honoured; `poplar export` to Maildir and mbox and back keeps the list.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startPoplar, type PoplarProcess } from '../helpers/poplar-process.js';
import { popFetch } from '../helpers/python-clients.js';

const UIDVALIDITY = 1699999999;
/** Dovecot's default POP3 UIDL, written out by hand: uid and uidvalidity as %08X each, which Dovecot prints in lower case. */
const dovecotUidl = (uid: number): string => `${uid.toString(16).padStart(8, '0')}${UIDVALIDITY.toString(16).padStart(8, '0')}`;

interface Fixture {
  file: string;
  dir: 'cur' | 'new';
  body: string;
  uid: number;
  pop3?: string;
}

const FIXTURES: Fixture[] = [
  { dir: 'cur', file: '1700000001.M100P11.oldhost,S=49:2,S', uid: 3, body: 'Subject: first\n\nread long ago\n' },
  { dir: 'cur', file: '1700000002.M200P11.oldhost:2,', uid: 5, body: 'Subject: second\r\n\r\nnot read\r\n' },
  { dir: 'new', file: '1700000003.M300P11.oldhost', uid: 6, body: 'Subject: third\n\nnew\n.dot\n' },
  { dir: 'cur', file: '1700000004.M400P11.oldhost:2,RS', uid: 8, pop3: 'qpopper-legacy-9f3a', body: 'Subject: fourth\n\nmigrated before\n' },
];

describe('import and export', () => {
  let p: PoplarProcess;
  let work: string;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'poplar-migrate-'));
    p = await startPoplar({ users: { alice: 'wonderland', bob: 'builder', carol: 'singer', dave: 'diver' } });
  });
  after(async () => {
    await p.cleanup();
    await rm(work, { recursive: true, force: true });
  });

  it('R-X11 R-X15 importing a Dovecot Maildir keeps the UIDL list its dovecot-uidlist gives, flags and bytes', async () => {
    const src = join(work, 'dovecot-Maildir');
    for (const d of ['cur', 'new', 'tmp']) await mkdir(join(src, d), { recursive: true });
    const lines = [`3 V${UIDVALIDITY} N9 G6d1c0a2b3e4f56789abcdef012345678`];
    for (const f of FIXTURES) {
      await writeFile(join(src, f.dir, f.file), f.body);
      const t = new Date((1700000000 + f.uid) * 1000);
      await utimes(join(src, f.dir, f.file), t, t);
      lines.push(`${f.uid}${f.pop3 === undefined ? '' : ` P${f.pop3}`} W${Buffer.byteLength(f.body.replace(/\r?\n/g, '\r\n'))} :${f.file}`);
    }
    await writeFile(join(src, 'dovecot-uidlist'), `${lines.join('\n')}\n`);
    const dovecotShowed = FIXTURES.map((f) => f.pop3 ?? dovecotUidl(f.uid));

    const r = await p.cli(['import', '--user', 'alice', src]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /imported 4 message\(s\), \d+ octets, into "alice"; 4 kept their UIDL, 0 got a new one/);
    assert.match(r.stderr, /^import alice: 4 of 4 messages, \d+ octets done$/m, 'plain progress lines when not a terminal');
    const changed = r.stderr.split('\n').filter((l) => l.includes('uidl_list_changed')).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(changed.map((c) => [c['mailbox'], c['before'], c['added'], c['carried']]), [['alice', 0, 4, 4]], 'R-X11 the change is logged');

    // Before any POP3 session marks more messages seen: the S flags and the old arrival times came along.
    const seen = await p.cli(['expire', '--dry-run', '-o', 'retention.retrieved_days=1']);
    assert.match(seen.stdout, /^alice: would remove 2 message\(s\), \d+ octets, uids 1,4$/m, 'S flags and arrival times were kept');
    const got = await popFetch(p.pop3Port, 'alice', 'wonderland');
    assert.deepEqual(got.uidl.map((l) => l.split(' ')[1]), dovecotShowed, 'the same UIDL list as before the move');
    got.messages.forEach((m, i) => {
      assert.equal(m.bytes.toString(), FIXTURES[i]!.body.replace(/\r?\n/g, '\r\n'));
      assert.equal(got.list[i], `${i + 1} ${m.bytes.length}`);
    });
  });

  it('R-X11 R-X15 mbox import honours X-UIDL headers, unquotes >From lines, keeps a decimal UIDL as the uid while it is free, refuses a used one or a duplicate', async () => {
    const mbox = join(work, 'in.mbox');
    await writeFile(
      mbox,
      [
        'From someone@example.org Sat Jan  3 01:05:34 2004',
        'X-UIDL: 1a2b3c4d5e6f',
        'Status: RO',
        'Subject: one',
        '',
        '>From the start of a line',
        '>>From twice quoted',
        '',
        'From other@example.org Sun Jan  4 10:00:00 2004',
        'X-UIDL: 12',
        'Subject: two',
        '',
        'decimal UIDL, kept as uid 12',
        '',
        'From other@example.org Mon Jan  5 10:00:00 2004',
        'X-UIDL: 1a2b3c4d5e6f',
        'Subject: three',
        '',
        'duplicate UIDL, dropped',
        '',
        'From other@example.org Tue Jan  6 10:00:00 2004',
        'X-UIDL: 5',
        'Subject: four',
        '',
        'decimal UIDL below the uids given (12, 13), dropped',
        '',
      ].join('\n'),
    );
    const r = await p.cli(['import', '--user', 'bob', mbox]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /imported 4 message\(s\).*2 kept their UIDL, 2 got a new one/);
    const got = await popFetch(p.pop3Port, 'bob', 'builder');
    const uidls = got.uidl.map((l) => l.split(' ')[1]);
    // Regression: a decimal X-UIDL (a poplar uid, as an export of poplar mail carries) was always
    // refused, so moving a maildrop between stores changed the UIDL of all of poplar's own mail.
    assert.deepEqual(uidls, ['1a2b3c4d5e6f', '12', '13', '14'], 'uid 12 kept; the duplicate and the used 5 got new uids');
    assert.equal(got.messages[0]!.bytes.toString(), 'X-UIDL: 1a2b3c4d5e6f\r\nStatus: RO\r\nSubject: one\r\n\r\nFrom the start of a line\r\n>From twice quoted\r\n');
    assert.equal(got.messages[1]!.bytes.toString(), 'X-UIDL: 12\r\nSubject: two\r\n\r\ndecimal UIDL, kept as uid 12\r\n');
  });

  it('R-X11 R-X15 export to Maildir (dovecot-uidlist) and to mbox (X-UIDL), and import back: the same UIDL list and bytes', async () => {
    const alice = await popFetch(p.pop3Port, 'alice', 'wonderland');
    const aliceUidls = alice.uidl.map((l) => l.split(' ')[1]);
    const md = join(work, 'export-Maildir');
    const ex1 = await p.cli(['export', '--user', 'alice', '--format', 'maildir', md]);
    assert.equal(ex1.code, 0, ex1.stderr);
    assert.match(ex1.stdout, /exported 4 message\(s\)/);
    const uidlist = await readFile(join(md, 'dovecot-uidlist'), 'utf8');
    assert.match(uidlist, /^3 V\d+ N\d+ G[0-9a-f]{32}\n/);
    for (const u of aliceUidls) assert.match(uidlist, new RegExp(` P${u} W\\d+ :`), `P field for ${u}`);
    assert.equal((await p.cli(['import', '--user', 'carol', md])).code, 0);
    const carol = await popFetch(p.pop3Port, 'carol', 'singer');
    assert.deepEqual(carol.uidl.map((l) => l.split(' ')[1]), aliceUidls);
    assert.deepEqual(carol.messages.map((m) => m.bytes.toString()), alice.messages.map((m) => m.bytes.toString()));

    const mbox = join(work, 'export.mbox');
    const ex2 = await p.cli(['export', '--user', 'alice', '--format', 'mbox', mbox]);
    assert.equal(ex2.code, 0, ex2.stderr);
    assert.equal((await p.cli(['export', '--user', 'alice', '--format', 'mbox', mbox])).code, 1, 'an existing mbox is not overwritten');
    assert.equal((await p.cli(['export', '--user', 'alice', '--format', 'maildir', md])).code, 1, 'nor an existing Maildir');
    assert.equal((await p.cli(['import', '--user', 'dave', mbox])).code, 0);
    const dave = await popFetch(p.pop3Port, 'dave', 'diver');
    assert.deepEqual(dave.uidl.map((l) => l.split(' ')[1]), aliceUidls);
    dave.messages.forEach((m, i) => {
      assert.equal(m.bytes.toString(), `X-UIDL: ${aliceUidls[i]}\r\n${alice.messages[i]!.bytes.toString()}`);
    });
  });
});

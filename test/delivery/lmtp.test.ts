/**
 * LMTP delivery end to end (R-X6, RFC 2033) against a real `poplar serve` child process: python3's
 * smtplib.LMTP delivers, python3's poplib fetches. Quotas and their warnings (R-S16, R-S17) at
 * RCPT and at DATA time.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { lmtpSend, popFetch } from '../helpers/python-clients.js';
import { startPoplar, type PoplarProcess } from '../helpers/poplar-process.js';

const TRACE = /^Return-Path: <([^>]*)>\r\nDelivered-To: (\S+)\r\nReceived: from client\.example \(\[127\.0\.0\.1\]\)\r\n\tby \S+ \(poplar\) with LMTP id [0-9a-f]+\r\n\tfor <(\S+)>; \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000\r\n/;

function message(subject: string, body: string): Buffer {
  return Buffer.from(`From: sender@example.org\r\nTo: alice@example.org\r\nSubject: ${subject}\r\n\r\n${body}`, 'utf8');
}

describe('LMTP listener', () => {
  let p: PoplarProcess | undefined;
  afterEach(async () => {
    await p?.cleanup();
    p = undefined;
  });

  it('R-X6 smtplib.LMTP delivers to several recipients with one reply each; poplib reads the same bytes, exact sizes, new increasing uids', async () => {
    p = await startPoplar({ users: { alice: 'wonderland', bob: 'builder' } });
    const first = message('several', '.leading dot\r\n..two dots\r\nGr\u00fc\u00dfe 8-bit \u65e5\u672c\r\n.\r\nend\r\n');
    const second = message('second', `${'x'.repeat(998)}\r\n`.repeat(50));
    const r = await lmtpSend(p.lmtpPort, [
      { from: 'sender@example.org', to: ['alice@example.org', 'nobody@example.org', 'Bob+lists@example.org'], message: first, options: ['BODY=8BITMIME'] },
      { from: 'sender@example.org', to: ['alice@example.org'], message: second },
    ]);
    assert.equal(r.lhlo[0], 250);
    for (const ext of ['pipelining', '8bitmime', 'size']) assert.ok(ext in r.features, `LHLO advertises ${ext}`);
    assert.equal(r.features['size'], String(50 * 1024 * 1024));
    const [t1, t2] = r.deliveries;
    assert.deepEqual(t1!.rcpt.map((x) => x[0]), [250, 550, 250]);
    assert.match(t1!.rcpt[1]![1], /^5\.1\.1 <nobody@example\.org>: no such user/);
    assert.deepEqual(t1!.data.map((x) => x[0]), [250, 250], 'one DATA reply per accepted recipient');
    assert.deepEqual(t2!.data.map((x) => x[0]), [250]);

    const alice = await popFetch(p.pop3Port, 'alice', 'wonderland');
    assert.equal(alice.messages.length, 2);
    const sent = [first, second];
    alice.messages.forEach((m, i) => {
      const trace = TRACE.exec(m.bytes.toString('latin1'));
      assert.ok(trace, `trace headers on message ${i + 1}: ${m.bytes.subarray(0, 300).toString()}`);
      assert.deepEqual(trace.slice(1), ['sender@example.org', 'alice@example.org', 'alice@example.org']);
      assert.ok(m.bytes.subarray(trace[0].length).equals(sent[i]!), `message ${i + 1} bytes equal what was sent`);
      assert.equal(m.octets, m.bytes.length, 'RETR octets = the bytes read');
      assert.equal(alice.list[i], `${i + 1} ${m.bytes.length}`, 'LIST size is exact');
      assert.equal(m.resp, `+OK ${m.bytes.length} octets`);
    });
    const uids = alice.uidl.map((l) => Number(l.split(' ')[1]));
    assert.ok(uids.every((u) => Number.isInteger(u) && u > 0));
    assert.ok(uids[1]! > uids[0]!, 'uids increase');

    const bob = await popFetch(p.pop3Port, 'bob', 'builder');
    assert.equal(bob.messages.length, 1);
    assert.match(bob.messages[0]!.bytes.toString('latin1'), /^Return-Path: <sender@example\.org>\r\nDelivered-To: Bob\+lists@example\.org\r\n/);

    const later = await lmtpSend(p.lmtpPort, [{ from: '', to: ['alice@example.org'], message: message('bounce', 'null sender\r\n') }]);
    assert.deepEqual(later.deliveries[0]!.data.map((x) => x[0]), [250]);
    const again = await popFetch(p.pop3Port, 'alice', 'wonderland');
    const newUid = Number(again.uidl[2]!.split(' ')[1]);
    assert.ok(newUid > Math.max(...uids), 'a later delivery gets a new, higher uid');
    assert.match(again.messages[2]!.bytes.toString('latin1'), /^Return-Path: <>\r\n/);
    assert.equal((await p.logged('delivered', 4)).length, 4);
  });

  it('R-X6 SIZE: a declared size over the limit is refused at MAIL; an oversized message gets 552 5.3.4 for each recipient', async () => {
    p = await startPoplar({ users: { alice: 'wonderland', bob: 'builder' }, overrides: ['lmtp.max_message_size=2048'] });
    const big = message('big', 'y'.repeat(3000) + '\r\n');
    const r = await lmtpSend(p.lmtpPort, [
      { from: 's@example.org', to: ['alice@example.org'], message: big, options: ['SIZE=5000'] },
      { from: 's@example.org', to: ['alice@example.org', 'bob@example.org'], message: big },
      { from: 's@example.org', to: ['alice@example.org'], message: message('small', 'fits\r\n') },
    ]);
    assert.equal(r.deliveries[0]!.mail[0], 552);
    assert.deepEqual(r.deliveries[1]!.data.map((x) => x[0]), [552, 552]);
    for (const d of r.deliveries[1]!.data) assert.match(d[1], /^5\.3\.4 /);
    assert.deepEqual(r.deliveries[2]!.data.map((x) => x[0]), [250]);
    assert.equal((await popFetch(p.pop3Port, 'alice', 'wonderland')).messages.length, 1);
    assert.equal((await popFetch(p.pop3Port, 'bob', 'builder')).messages.length, 0);
  });

  it('R-S16 R-S17 filling a small quota: one warning per threshold crossed, not per delivery, then 552 5.2.2', async () => {
    p = await startPoplar({ overrides: ['quota.messages=10', 'quota.warn_percent=[50, 80]'] });
    const replies: number[] = [];
    for (let i = 1; i <= 9; i++) {
      const r = await lmtpSend(p.lmtpPort, [{ from: 's@example.org', to: ['alice@example.org'], message: message(`m${i}`, `${i}\r\n`) }]);
      const d = r.deliveries[0]!;
      replies.push(d.rcpt[0]![0] === 250 ? d.data[0]![0] : d.rcpt[0]![0]);
      if (i === 9) assert.match(d.rcpt[0]![1], /^5\.2\.2 <alice@example\.org>: mailbox full/);
    }
    // 5th delivery: 5/10 -> warning 50% (6 messages); 7th: 8/10 -> warning 80% (9); 8th fills it.
    assert.deepEqual(replies, [250, 250, 250, 250, 250, 250, 250, 250, 552]);
    const alice = await popFetch(p.pop3Port, 'alice', 'wonderland');
    const subjects = alice.messages.map((m) => /^Subject: (.*)\r$/m.exec(m.bytes.toString())?.[1]);
    assert.deepEqual(subjects, ['m1', 'm2', 'm3', 'm4', 'm5', 'Your mailbox is 50% full', 'm6', 'm7', 'Your mailbox is 80% full', 'm8']);
    assert.deepEqual((await p.logged('quota_warning', 2)).map((e) => e['threshold']), [50, 80]);
  });

  it('R-S16 a message too big for the space left is refused at DATA; with over_quota = "defer" the reply is 452 4.2.2', async () => {
    p = await startPoplar({ overrides: ['quota.bytes=3000', 'quota.warn_percent=[]', 'quota.over_quota=defer'] });
    const r = await lmtpSend(p.lmtpPort, [
      { from: 's@example.org', to: ['alice@example.org'], message: message('a', 'a'.repeat(1500) + '\r\n') },
      { from: 's@example.org', to: ['alice@example.org'], message: message('b', 'b'.repeat(1500) + '\r\n') },
    ]);
    assert.deepEqual(r.deliveries[0]!.data.map((x) => x[0]), [250]);
    assert.equal(r.deliveries[1]!.rcpt[0]![0], 250, 'admitted at RCPT: there is room for some message');
    assert.equal(r.deliveries[1]!.data[0]![0], 452);
    assert.match(r.deliveries[1]!.data[0]![1], /^4\.2\.2 /);
    assert.equal((await p.cli(['quota', 'set', 'alice', '--bytes', '10K'])).code, 0);
    const retry = await lmtpSend(p.lmtpPort, [{ from: 's@example.org', to: ['alice@example.org'], message: message('b', 'b'.repeat(1500) + '\r\n') }]);
    assert.deepEqual(retry.deliveries[0]!.data.map((x) => x[0]), [250], 'a raised per-user quota applies at once');
    assert.equal((await popFetch(p.pop3Port, 'alice', 'wonderland')).messages.length, 2);
  });
});

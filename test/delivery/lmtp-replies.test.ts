/**
 * LMTP's replies after DATA (R-X6, RFC 2033 §4.2) when a transaction names a recipient more than
 * once, and refused deliveries in /metrics (R-X13) for LMTP and `poplar deliver`. Against a real
 * `poplar serve` child process: a raw socket and python3's smtplib.LMTP deliver, poplib reads.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { startPoplar, type PoplarProcess } from '../helpers/poplar-process.js';
import { lmtpSend, popFetch } from '../helpers/python-clients.js';
import { waitFor } from '../helpers/wait.js';

/** Sends `script` in one write once the greeting is in (an early talker is refused) and returns every reply line until the server closes. */
function lmtpRaw(port: number, script: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let got = '';
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no close from the server; so far:\n${got}`)));
    socket.on('data', (d: Buffer) => {
      const greeted = got.includes('\r\n');
      got += d.toString('latin1');
      if (!greeted && got.includes('\r\n')) socket.write(script);
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(got.split('\r\n').filter((l) => l !== '')));
  });
}

/** Final reply lines (not the `250-` continuation lines of LHLO), as `code text`. */
const finals = (lines: readonly string[]): string[] => lines.filter((l) => /^\d{3} /.test(l));

function message(subject: string, body: string): string {
  return `From: sender@example.org\r\nTo: bob@example.org\r\nSubject: ${subject}\r\n\r\n${body}`;
}

describe('LMTP replies per accepted recipient', () => {
  let p: PoplarProcess | undefined;
  afterEach(async () => {
    await p?.cleanup();
    p = undefined;
  });

  it('R-X6 RFC 2033 §4.2 a recipient named twice (bob, BOB, bob again) gets a DATA reply per 250 RCPT, in order, and the message once (regression: one reply per distinct address, so the client deferred and delivered twice)', async () => {
    p = await startPoplar({ users: { alice: 'wonderland', bob: 'builder' }, overrides: ['lmtp.max_message_size=2048'] });
    const body = 'one copy\r\n..dot line\r\n';
    const lines = await lmtpRaw(
      p.lmtpPort,
      'LHLO client.example\r\nMAIL FROM:<s@example.org>\r\n' +
        'RCPT TO:<bob@example.org>\r\nRCPT TO:<BOB@example.org>\r\nRCPT TO:<nobody@example.org>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n' +
        `DATA\r\n${message('twice', body)}.\r\n` +
        // an oversized message: smtp-server's own 552 5.3.4 is sent once per accepted RCPT too
        'MAIL FROM:<s@example.org>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<ALICE@example.org>\r\n' +
        `DATA\r\n${message('big', `${'y'.repeat(70)}\r\n`.repeat(40))}.\r\n` +
        'QUIT\r\n',
    );
    const replies = finals(lines).slice(2); // after the greeting and LHLO
    const codes = replies.map((l) => l.slice(0, 3));
    assert.deepEqual(codes, [
      '250', '250', '250', '550', '250', '250', '354', // MAIL, 5 RCPT, DATA
      '250', '250', '250', '250', // one per accepted RCPT: bob, BOB, alice, bob
      '250', '250', '250', '354', '552', '552', // MAIL, 2 RCPT, DATA, one 552 per accepted RCPT
      '221',
    ], replies.join('\n'));
    const data = replies.slice(7, 11);
    ['bob@example.org', 'BOB@example.org', 'alice@example.org', 'bob@example.org'].forEach((rcpt, i) => {
      assert.match(data[i]!, new RegExp(`^250 2\\.6\\.0 <${rcpt.replace('.', '\\.')}> [0-9a-f]+ Saved as uid \\d+$`));
    });
    assert.equal(data[0]!.split(' ').slice(4).join(' '), data[1]!.split(' ').slice(4).join(' '), 'bob and BOB share one delivery');
    for (const l of replies.slice(15, 17)) assert.match(l, /^552 5\.3\.4 /);

    const bob = await popFetch(p.pop3Port, 'bob', 'builder');
    assert.equal(bob.messages.length, 1, 'bob gets the message once');
    assert.ok(bob.messages[0]!.bytes.toString('latin1').endsWith(message('twice', body.replace('..', '.'))), 'the body as sent, dot-stuffing removed');
    assert.equal((await popFetch(p.pop3Port, 'alice', 'wonderland')).messages.length, 1);
    assert.equal((await p.logged('delivered', 2)).length, 2);
  });

  it('R-X6 RFC 2033 §4.2 smtplib.LMTP reads one reply per accepted RCPT when a recipient repeats in other case', async () => {
    p = await startPoplar({ users: { alice: 'wonderland', bob: 'builder' } });
    const r = await lmtpSend(p.lmtpPort, [
      { from: 's@example.org', to: ['bob@example.org', 'BOB@example.org', 'alice@example.org', 'Bob+lists@example.org'], message: Buffer.from(message('repeat', 'x\r\n')) },
      { from: 's@example.org', to: ['alice@example.org'], message: Buffer.from(message('next', 'y\r\n')) },
    ]);
    assert.deepEqual(r.deliveries[0]!.rcpt.map((x) => x[0]), [250, 250, 250, 250]);
    assert.deepEqual(r.deliveries[0]!.data.map((x) => x[0]), [250, 250, 250, 250]);
    assert.deepEqual(r.deliveries[1]!.data.map((x) => x[0]), [250], 'the next transaction reads its own reply, not a late one');
    assert.equal((await popFetch(p.pop3Port, 'bob', 'builder')).messages.length, 1);
    assert.equal((await popFetch(p.pop3Port, 'alice', 'wonderland')).messages.length, 2);
  });

  it('R-X13 R-X6 refused deliveries are counted in /metrics by protocol and reason, for LMTP and for poplar deliver (regression: refusals appeared in no metric)', async () => {
    p = await startPoplar({
      users: { alice: 'wonderland', bob: 'builder', carol: 'singer' },
      overrides: ['server.metrics_listen=127.0.0.1:0', 'lmtp.max_message_size=2048', 'quota.messages=1', 'quota.warn_percent=[]'],
    });
    const server = p;
    await waitFor(() => server.events('listening').some((e) => e['protocol'] === 'http'));
    const metricsPort = Number(p.events('listening').find((e) => e['protocol'] === 'http')!['port']);
    const small = Buffer.from(message('s', 'fits\r\n'));
    const big = Buffer.from(message('big', `${'z'.repeat(70)}\r\n`.repeat(40)));
    const r = await lmtpSend(p.lmtpPort, [
      { from: 's@example.org', to: ['alice@example.org', 'nobody@example.org'], message: small }, // unknown_user at RCPT
      { from: 's@example.org', to: ['alice@example.org'], message: small }, // over_quota at RCPT: alice is full
      { from: 's@example.org', to: ['bob@example.org', 'carol@example.org'], message: big }, // too_big, once per recipient
    ]);
    assert.deepEqual(r.deliveries.map((d) => d.rcpt.map((x) => x[0])), [[250, 550], [552], [250, 250]]);
    assert.deepEqual(r.deliveries[2]!.data.map((x) => x[0]), [552, 552]);
    assert.equal((await p.cli(['deliver', '--user', 'nobody'], 'Subject: x\n\nx\n')).code, 67);
    assert.equal((await p.cli(['deliver', '--user', 'alice'], 'Subject: x\n\nx\n')).code, 73);
    assert.equal((await p.cli(['deliver', '--user', 'bob'], big.toString())).code, 73);
    assert.equal((await p.cli(['deliver', '--user', 'bob'], 'Subject: x\n\nx\n')).code, 0);

    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const value = (protocol: string, reason: string): number => {
      const m = new RegExp(`^poplar_deliveries_refused_total\\{protocol="${protocol}",reason="${reason}"\\} (\\d+)$`, 'm').exec(text);
      assert.ok(m, `poplar_deliveries_refused_total{protocol="${protocol}",reason="${reason}"} in\n${text}`);
      return Number(m[1]);
    };
    assert.deepEqual(
      ['unknown_user', 'over_quota', 'too_big', 'temp_failure'].map((reason) => [reason, value('lmtp', reason), value('deliver', reason)]),
      [['unknown_user', 1, 1], ['over_quota', 1, 1], ['too_big', 2, 1], ['temp_failure', 0, 0]],
    );
    assert.match(text, /^# TYPE poplar_deliveries_refused_total counter$/m);
  });
});

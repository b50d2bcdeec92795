/**
 * R-X6 durability: the server process is SIGKILLed in the middle of a stream of LMTP deliveries.
 * Afterwards (a new server on the same data directory, read with poplib) every message that got a
 * 250 is there and whole, and no message is there partially: each one present is byte-exact.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { popFetch } from '../helpers/python-clients.js';
import { startPoplar, type PoplarProcess } from '../helpers/poplar-process.js';
import { waitFor } from '../helpers/wait.js';

const STREAM_SCRIPT = String.raw`
import smtplib, sys
l = smtplib.LMTP('127.0.0.1', int(sys.argv[1]), local_hostname='client.example', timeout=30)
for i in range(int(sys.argv[2])):
    line = ('%06d ' % i) + 'abcdefghijklmnopqrstuvwxyz0123456789' * 2 + '\r\n'
    body = line * (200 + (i * 37) % 800)
    msg = ('From: s@example.org\r\nSubject: crash test\r\nX-Seq: %d\r\n\r\n' % i + body).encode()
    try:
        l.sendmail('s@example.org', ['alice@example.org'], msg)
    except Exception as e:
        print('stopped', repr(e), flush=True)
        sys.exit(0)
    print('ack', i, flush=True)
`;

/** What message `i` of the stream is (the same construction as the script). */
function expected(i: number): Buffer {
  const line = `${String(i).padStart(6, '0')} ${'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(2)}\r\n`;
  return Buffer.from(`From: s@example.org\r\nSubject: crash test\r\nX-Seq: ${i}\r\n\r\n${line.repeat(200 + ((i * 37) % 800))}`);
}

const started: PoplarProcess[] = [];
after(async () => {
  for (const p of started.reverse()) await p.cleanup();
});

it('R-X6 SIGKILL during a stream of LMTP deliveries: every message that got 250 is there whole, none partially', async () => {
  const first = await startPoplar();
  started.push(first);
  const client = spawn('python3', ['-c', STREAM_SCRIPT, String(first.lmtpPort), '100000']);
  const acked: number[] = [];
  let out = '';
  client.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    const lines = out.split('\n');
    out = lines.pop()!;
    for (const l of lines) if (l.startsWith('ack ')) acked.push(Number(l.slice(4)));
  });
  try {
    await waitFor(() => {
      if (client.exitCode !== null) throw new Error('the LMTP client stopped early');
      return acked.length >= 60;
    }, 60_000, '60 acknowledged deliveries');
    await first.kill(); // SIGKILL, while the client keeps sending
  } finally {
    if (client.exitCode === null) await Promise.race([once(client, 'exit'), new Promise((r) => setTimeout(r, 10_000))]);
    client.kill('SIGKILL');
  }
  const leftovers = await readdir(join(first.dataDir, 'mail', 'alice', 'tmp'));

  const second = await startPoplar({ dataDir: first.dataDir, users: {} });
  started.push(second);
  const fetched = await popFetch(second.pop3Port, 'alice', 'wonderland');
  const seqs: number[] = [];
  for (const m of fetched.messages) {
    const text = m.bytes.toString('latin1');
    const seq = Number(/^X-Seq: (\d+)\r$/m.exec(text)?.[1]);
    assert.ok(Number.isInteger(seq), 'every message present has its header block');
    const start = text.indexOf('From: s@example.org');
    assert.ok(m.bytes.subarray(start).equals(expected(seq)), `message ${seq} is whole (${m.bytes.length - start} octets)`);
    seqs.push(seq);
  }
  for (const i of acked) assert.ok(seqs.includes(i), `acknowledged message ${i} is there`);
  assert.equal(new Set(seqs).size, seqs.length, 'no message twice');
  assert.ok(seqs.length <= acked.length + 1, 'at most the one message in flight is there without its 250');
  const uids = fetched.uidl.map((l) => Number(l.split(' ')[1]));
  assert.deepEqual([...uids].sort((a, b) => a - b), uids, 'uids ascend');
  process.stderr.write(`crash test: ${acked.length} acknowledged, ${seqs.length} present, ${leftovers.length} partial file(s) left in tmp/ (never listed)\n`);
});

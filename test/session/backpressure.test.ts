/**
 * R-X2 R-X9: a client that pipelines commands without end and never reads its replies. The server
 * must stop reading once its replies wait unsent, so what it holds stays bounded, and every reply
 * must arrive, in order, once the client reads again. Regression (a planted bug the suite missed):
 * a command loop that read on while short replies piled up unsent let such a client make the
 * server buffer without bound.
 *
 * Why it is built this way: on loopback the kernel buffers of an ordinary client absorb megabytes
 * of replies, so the server's own buffers would fill only after about a million commands. The
 * client here is python3 (Node cannot) with tiny SO_RCVBUF/SO_SNDBUF and a small TCP_MAXSEG, set
 * before connect, so the kernel holds a few tens of kilobytes. Nothing is decided by time: the
 * server runs in this process and the test watches its side of the connection (diagnostics
 * channel `net.server.socket`). The fixed server reaches a state the buggy one never does (input
 * paused while the session waits for 'drain'); the buggy one reaches a state the fixed one never
 * can (more input read than the bound below). Whichever comes first decides.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import { withServer, waitFor } from '../helpers/test-server.js';
import { needProgram } from '../helpers/external.js';

/** Input the client offers: far beyond what the kernel and a bounded server can hold. */
const BUDGET = 4 * 1024 * 1024;
/**
 * Input the server may read while it does not send: its input pause (64 KiB) and read-ahead, plus
 * the commands whose replies fit in the client's receive buffer, the server's send buffer (about
 * 50 KiB with 536-octet segments) and its own output queue; about 140-180 KiB here.
 */
const MAX_READ = 1024 * 1024;
/** Replies the server may hold in its socket's queue while it waits for 'drain'. */
const MAX_QUEUED = 256 * 1024;

/**
 * Logs in, then sends NOOP/STAT pairs without reading until BUDGET is sent or a line arrives on
 * stdin; then sends up to the end of the pair, QUIT, reads every reply and checks their order.
 * Prints one JSON line: commands sent, replies read, the first reply out of order.
 */
const CLIENT = String.raw`
import json, os, select, socket, sys
port, budget = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
s.connect(('127.0.0.1', port))
buf = b''
def line():
    global buf
    while b'\r\n' not in buf:
        d = s.recv(4096)
        if not d: sys.exit('closed during login')
        buf += d
    l, buf = buf.split(b'\r\n', 1)
    return l.decode('latin1')
line()
s.sendall(b'USER alice\r\nPASS pw\r\n')
if not (line().startswith('+OK') and line().startswith('+OK')): sys.exit('login failed')
s.setblocking(False)
pair = b'NOOP\r\nSTAT\r\n'
chunk = pair * 4096
sent = 0
stdin = sys.stdin.fileno()
while True:
    r, w, _ = select.select([stdin], [s] if sent < budget else [], [])
    if r: break
    off = sent % len(chunk)
    try: sent += s.send(chunk[off:off + min(len(chunk) - off, budget - sent)])
    except BlockingIOError: pass
out = pair[sent % len(pair):] if sent % len(pair) else b''
commands = (sent + len(out)) // 6
out += b'QUIT\r\n'
replies, bad, quit = 0, None, None
while quit is None:
    r, w, _ = select.select([s], [s] if out else [], [])
    if w:
        try: out = out[s.send(out):]
        except BlockingIOError: pass
    if not r: continue
    d = s.recv(1 << 20)
    if not d: break
    buf += d
    lines = buf.split(b'\r\n')
    buf = lines.pop()
    for l in lines:
        if replies == commands:
            quit = l.decode('latin1')
            break
        want = b'+OK 0 0' if replies % 2 else b'+OK'
        if l != want and bad is None: bad = [replies, l.decode('latin1')]
        replies += 1
print(json.dumps({'sent': sent, 'commands': commands, 'replies': replies, 'bad': bad, 'quit': quit}))
`;

it('R-X2 R-X9 a client that pipelines without reading: the server stops reading, holds a bounded output, and every reply arrives in order once the client reads (regression: the loop read on while replies piled up)', { skip: needProgram('python3', 'python3'), timeout: 170_000 }, async () => {
  const accepted: Socket[] = [];
  const onSocket = (m: unknown): void => void accepted.push((m as { socket: Socket }).socket);
  subscribe('net.server.socket', onSocket);
  try {
    await withServer({ users: { alice: { password: 'pw' } } }, async (t) => {
      const py = spawn('python3', ['-c', CLIENT, String(t.port), String(BUDGET)], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      py.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      py.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      const exited = new Promise<number | null>((resolve) => py.once('close', resolve));
      try {
        await waitFor(() => accepted.length > 0, 30_000, 'the connection');
        const server = accepted[0]!;
        // The session waits for 'drain' with its input paused: the state only a server that stops reading reaches.
        const stopped = (): boolean => server.isPaused() && server.listenerCount('drain') > 0;
        const overread = (): boolean => server.bytesRead > MAX_READ;
        await waitFor(() => stopped() || overread() || py.exitCode !== null, 150_000, 'the server stopping or over-reading');
        assert.ok(!overread(), `the server read ${server.bytesRead} octets of pipelined commands while the client read no reply`);
        assert.ok(stopped(), `the client ended first: ${err}${out}`);
        assert.ok(server.writableLength <= MAX_QUEUED, `${server.writableLength} octets of replies queued in the server`);
        const readAtStop = server.bytesRead;
        console.log(`# stopped reading after ${readAtStop} octets, ${server.writableLength} queued`);

        py.stdin.end('read\n');
        assert.equal(await exited, 0, err);
        const r = JSON.parse(out) as { sent: number; commands: number; replies: number; bad: unknown; quit: string | null };
        assert.ok(r.sent > readAtStop, `the client sent ${r.sent} octets, no more than the server had read`);
        assert.equal(r.replies, r.commands, 'every pipelined command got its reply');
        assert.equal(r.bad, null, 'replies arrive in the order of their commands');
        assert.match(r.quit ?? '', /^\+OK/);
      } finally {
        py.kill('SIGKILL');
      }
    });
  } finally {
    unsubscribe('net.server.socket', onSocket);
  }
});

/**
 * R-X6: a delivery is acknowledged only once it is durable. SIGKILL keeps the page cache, so the
 * crash tests cannot see a missing fsync; these tests watch the real process's system calls with
 * strace instead and check their order, for each way mail comes in:
 *   1. the message file is fsynced before it is renamed into new/ (else a power cut can leave an
 *      empty or partial file in new/, listed as mail);
 *   2. new/ is fsynced after that rename (else the rename itself can be lost);
 *   3. only then is the delivery acknowledged: the Maildir store's promise (a line the test
 *      program prints), LMTP's 250 after DATA, `poplar deliver`'s exit 0.
 * And with every fsync failing (strace injects EIO), a delivery is refused and nothing is listed.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { needProgram } from '../helpers/external.js';
import { addUsers, startPoplar } from '../helpers/poplar-process.js';
import { MAIN, runProcess, type Run } from '../cli/run.js';
import { attach, readTrace, straceArgs, type Syscall } from '../helpers/strace.js';

const CALLS = ['fsync', 'fdatasync', 'rename', 'renameat', 'renameat2', 'write', 'writev'];
const MESSAGE = 'From: a@example.org\r\nSubject: durable\r\n\r\nbody\r\n';

/** Runs a command under strace; resolves with its exit code and what it printed. */
function traced(out: string, argv: readonly string[], input: string, extra: readonly string[] = []): Promise<Run> {
  return runProcess('strace', [...straceArgs(out, CALLS), ...extra, ...argv], { input });
}

/** The index of the first call matching, after `from`; -1 if none. */
function find(calls: readonly Syscall[], match: (c: Syscall) => boolean, from = 0): number {
  for (let i = from; i < calls.length; i++) if (match(calls[i]!)) return i;
  return -1;
}

const ok = (c: Syscall): boolean => /^0\b/.test(c.ret);
const renameIntoNew = (maildir: string) => (c: Syscall) => /^rename/.test(c.name) && c.args.includes(`${maildir}/new/`) && ok(c);

/**
 * Checks the order for the one delivery in `calls` to the Maildir at `maildir`, and returns the
 * index of new/'s fsync: the acknowledgement must come after it.
 */
function assertDurableOrder(calls: readonly Syscall[], maildir: string): number {
  const r = find(calls, renameIntoNew(maildir));
  assert.ok(r >= 0, `no rename into ${maildir}/new/ in the trace`);
  const tmpFile = /"([^"]+\/tmp\/[^"]+)"/.exec(calls[r]!.args)?.[1];
  assert.ok(tmpFile !== undefined, `rename from tmp/: ${calls[r]!.args}`);
  const fileSync = find(calls, (c) => /^f(data)?sync$/.test(c.name) && c.args.includes(`<${tmpFile}>`) && ok(c));
  assert.ok(fileSync >= 0 && fileSync < r, `the message file ${tmpFile} is fsynced before its rename into new/ (fsync at ${fileSync}, rename at ${r})`);
  const dirSync = find(calls, (c) => /^f(data)?sync$/.test(c.name) && c.args.includes(`<${maildir}/new>`) && ok(c), r + 1);
  assert.ok(dirSync > r, `new/ is fsynced after the rename into it`);
  return dirSync;
}

describe('R-X6 durability before acknowledgement', { skip: needProgram('strace', 'strace') }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poplar-durable-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('R-X6 the Maildir store resolves deliver() only after fsync of the file, its rename, and fsync of new/', async () => {
    const root = join(dir, 'store');
    const script = join(dir, 'deliver-once.mjs');
    const storeModule = fileURLToPath(new URL('../../src/storage/maildir/maildir-store.js', import.meta.url));
    await writeFile(
      script,
      `import { MaildirStore } from ${JSON.stringify(storeModule)};\n` +
        `const store = new MaildirStore({ path: (m) => ${JSON.stringify(root)} + '/' + m });\n` +
        `await store.create('alice');\n` +
        `await store.deliver('alice', Buffer.from(${JSON.stringify(MESSAGE)}));\n` +
        `process.stdout.write('ACKNOWLEDGED\\n');\n` +
        `await store.close();\n`,
    );
    const out = join(dir, 'store.trace');
    const r = await traced(out, [process.execPath, script], '');
    assert.equal(r.code, 0, r.stderr);
    const calls = await readTrace(out);
    const dirSync = assertDurableOrder(calls, join(root, 'alice'));
    const ack = find(calls, (c) => /^write/.test(c.name) && c.args.includes('ACKNOWLEDGED'));
    assert.ok(ack > dirSync, `deliver() resolved (${ack}) only after new/ was fsynced (${dirSync})`);
  });

  it('R-X6 poplar deliver exits 0 only after fsync of the file, its rename, and fsync of new/', async () => {
    const data = join(dir, 'lda');
    await addUsers(data, { alice: 'wonderland' });
    const out = join(dir, 'lda.trace');
    const r = await traced(out, [process.execPath, MAIN, 'deliver', '--user', 'alice', '--data', data], MESSAGE);
    assert.equal(r.code, 0, r.stderr);
    assertDurableOrder(await readTrace(out), join(data, 'mail', 'alice'));
  });

  it('R-X6 LMTP answers 250 after DATA only after fsync of the file, its rename, and fsync of new/', async () => {
    const server = await startPoplar({ users: { alice: 'wonderland' } });
    const out = join(process.env.KEEP_TRACE ?? dir, 'lmtp.trace');
    try {
      const tracer = await attach(server.child.pid!, out, CALLS);
      let reply: string;
      try {
        reply = await lmtpDeliver(server.lmtpPort, 'alice', MESSAGE);
      } finally {
        await tracer.stop();
      }
      assert.match(reply, /^250 /, reply);
      const calls = await readTrace(out);
      const dirSync = assertDurableOrder(calls, join(server.dataDir, 'mail', 'alice'));
      const head = reply.slice(0, 24);
      const ack = find(calls, (c) => /^write/.test(c.name) && c.args.includes(head));
      assert.ok(ack >= 0, `the reply "${head}" is in the trace`);
      assert.ok(ack > dirSync, `250 after DATA (${ack}) is written only after new/ was fsynced (${dirSync})`);
    } finally {
      await server.cleanup();
    }
  });

  it('R-X6 with every fsync failing (EIO), poplar deliver refuses the message (exit 75) and nothing is listed', async () => {
    const data = join(dir, 'eio');
    await addUsers(data, { alice: 'wonderland' });
    const out = join(dir, 'eio.trace');
    const r = await traced(out, [process.execPath, MAIN, 'deliver', '--user', 'alice', '--data', data], MESSAGE, [
      '-e',
      'inject=fsync,fdatasync:error=EIO',
    ]);
    assert.equal(r.code, 75, `exit ${r.code}: ${r.stderr}`);
    const newDir = join(data, 'mail', 'alice', 'new');
    const left = await readdir(newDir).catch(() => []);
    assert.deepEqual(left, [], 'a refused delivery leaves nothing in new/');
  });
});

/** One LMTP transaction to `user`; resolves with the reply to DATA. */
async function lmtpDeliver(port: number, user: string, message: string): Promise<string> {
  const sock = connect(port, '127.0.0.1');
  sock.setEncoding('latin1');
  let buf = '';
  const lines: string[] = [];
  let waiter: (() => void) | undefined;
  sock.on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\r\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 2);
    }
    waiter?.();
  });
  /** The next final reply line (not a continuation "250-"). */
  const next = async (): Promise<string> => {
    for (;;) {
      const at = lines.findIndex((l) => /^\d{3} /.test(l));
      if (at >= 0) return lines.splice(0, at + 1).at(-1)!;
      await new Promise<void>((r) => (waiter = r));
    }
  };
  try {
    await next(); // greeting
    for (const cmd of ['LHLO test.example', 'MAIL FROM:<a@example.org>', `RCPT TO:<${user}@example.org>`, 'DATA']) {
      sock.write(cmd + '\r\n');
      const r = await next();
      if (!/^[23]/.test(r)) throw new Error(`${cmd}: ${r}`);
    }
    sock.write(message + '.\r\n');
    const reply = await next();
    sock.write('QUIT\r\n');
    return reply;
  } finally {
    sock.end();
  }
}

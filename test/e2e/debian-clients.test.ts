/**
 * Real POP3 clients from Debian against poplar, over plain POP3 on 127.0.0.1: fetchmail, mpop and
 * getmail6, run as child processes. Each client fetches the same awkward messages (CRLF, bare LF
 * with dot lines, no final newline, 8-bit, bare CR, 1 MB) and what it stores must equal the stored
 * message with its line ends turned into the client's local LF convention (R-K8, R-S19). Then:
 * UIDL tracking fetches nothing new on a second run (R-S12), delete-after-fetch empties the
 * maildrop only at QUIT (R-K4, R-S11), and mail fetched in keep mode stays.
 *
 * A missing client skips its group with the Debian package to install (`apt-get install fetchmail
 * mpop getmail6`); under `POPLAR_REQUIRE_EXTERNAL=1` (CI) it fails instead.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, waitFor, type TestServer } from '../helpers/test-server.js';
import { needProgram } from '../helpers/external.js';

/** Per-test ceiling; each client run has its own, shorter one. */
const TEST_TIMEOUT_MS = 60_000;
const CHILD_TIMEOUT_MS = 40_000;
/** Output kept per child (fetchmail -v and mpop print progress for the 1 MB message). */
const OUTPUT_CAP = 256 * 1024;

const CLIENTS = {
  fetchmail: { bin: 'fetchmail', pkg: 'fetchmail' },
  mpop: { bin: 'mpop', pkg: 'mpop' },
  getmail: { bin: 'getmail', pkg: 'getmail6' },
} as const;

// ---------------------------------------------------------------------------------------------
// The messages. Each carries `Message-ID: <key@poplar.test>` so a fetched file can be matched.

function header(key: string, subject: string, eol: string): string {
  return [`From: sender@example.org`, `To: rcpt@example.org`, `Subject: ${subject}`, `Message-ID: <${key}@poplar.test>`]
    .map((l) => l + eol)
    .join('');
}

function bigBody(): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < 14_600; i++) lines.push(`line ${String(i).padStart(7, '0')} ${'x'.repeat(60)}\r\n`);
  // A dot line in the middle of the big message too, so dot-stuffing is exercised across chunks.
  lines.splice(7_000, 0, '.a dot line deep inside\r\n', '.\r\n');
  return Buffer.from(lines.join(''));
}

const MESSAGES: ReadonlyArray<readonly [string, Buffer]> = [
  ['crlf', Buffer.from(header('crlf', 'plain CRLF', '\r\n') + '\r\nHello over CRLF\r\n')],
  [
    'bare-lf-dots',
    Buffer.from(header('bare-lf-dots', 'bare LF and dot lines', '\n') + '\nfirst\n.starts with a dot\n..two dots\n.\nafter a lone dot\n. space\n'),
  ],
  ['no-final-newline', Buffer.from(header('no-final-newline', 'no final newline', '\r\n') + '\r\nline one\r\nlast line, no newline')],
  [
    'eight-bit',
    Buffer.concat([
      Buffer.from(header('eight-bit', '8-bit body', '\r\n') + 'Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'),
      Buffer.from(Array.from({ length: 128 }, (_, i) => 0x80 + i)),
      Buffer.from('\r\nUTF-8: \u00e9t\u00e9 \u20ac\r\n', 'utf8'),
    ]),
  ],
  ['bare-cr', Buffer.from(header('bare-cr', 'bare CR', '\r') + '\rcr body\r.dot after CR\r')],
  ['one-mb', Buffer.concat([Buffer.from(header('one-mb', '1 MB', '\r\n') + '\r\n'), bigBody()])],
];

/** What a Unix client stores: every CRLF, bare CR and bare LF as LF, and a final LF. */
function localForm(m: Buffer): Buffer {
  let s = m.toString('latin1').replace(/\r\n|\r|\n/g, '\n');
  if (!s.endsWith('\n')) s += '\n';
  return Buffer.from(s, 'latin1');
}

const EXPECTED = new Map(MESSAGES.map(([k, m]) => [k, localForm(m)]));

function messageKey(b: Buffer): string | undefined {
  return /^Message-ID: <([^@>]+)@poplar\.test>$/m.exec(b.toString('latin1'))?.[1];
}

/** Reads every file of `dir` (not recursive), keyed by its Message-ID key; `strip` cleans client-added lines. */
async function fetched(dir: string, strip?: RegExp): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const name of (await readdir(dir)).sort()) {
    const p = join(dir, name);
    if (!(await stat(p)).isFile()) continue;
    let b = await readFile(p);
    if (strip !== undefined) b = Buffer.from(b.toString('latin1').replace(strip, ''), 'latin1');
    const key = messageKey(b);
    assert.ok(key !== undefined, `fetched file ${name} has no test Message-ID: ${b.subarray(0, 200).toString('latin1')}`);
    assert.ok(!out.has(key), `message ${key} was fetched twice`);
    out.set(key, b);
  }
  return out;
}

/** Asserts the fetched set is exactly `keys` and every message equals its local form byte for byte. */
function assertFetched(got: Map<string, Buffer>, keys: readonly string[], expected = EXPECTED): void {
  assert.deepEqual([...got.keys()].sort(), [...keys].sort(), 'the set of fetched messages');
  for (const k of keys) {
    const g = got.get(k)!;
    const e = expected.get(k)!;
    if (!g.equals(e)) {
      let i = 0;
      while (i < g.length && i < e.length && g[i] === e[i]) i++;
      assert.fail(
        `message ${k}: ${g.length} octets fetched, ${e.length} expected; first difference at octet ${i}: ` +
          `got ${JSON.stringify(g.subarray(Math.max(0, i - 30), i + 30).toString('latin1'))}, ` +
          `expected ${JSON.stringify(e.subarray(Math.max(0, i - 30), i + 30).toString('latin1'))}`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Child processes.

interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly output: string;
  readonly timedOut: boolean;
}

/**
 * Runs a client in its own process group so a hang can be killed with everything it started
 * (an MDA, a sleeping script). `onStart` gets the child to let a test kill it on purpose.
 */
function run(
  bin: string,
  args: readonly string[],
  env: Record<string, string>,
  opts: { timeoutMs?: number; onStart?: (pid: number) => void } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    const keep = (d: Buffer): void => {
      if (output.length < OUTPUT_CAP) output += d.toString('latin1');
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, opts.timeoutMs ?? CHILD_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output, timedOut });
    });
    if (child.pid !== undefined) opts.onStart?.(child.pid);
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function describeRun(r: RunResult): string {
  return `exit ${r.code}${r.signal ? ` signal ${r.signal}` : ''}${r.timedOut ? ' (timed out)' : ''}\n${r.output.slice(-4000)}`;
}

// ---------------------------------------------------------------------------------------------
// The server: one poplar for the file, Maildir in a temp folder this file owns (so tests can
// look at the files on disk), one mailbox per test so the tests do not depend on each other.

const MAILBOXES = ['fmkeep', 'fmkill', 'fmdel', 'mpkeep', 'mpdel', 'gmkeep', 'gmdel'] as const;
type Mailbox = (typeof MAILBOXES)[number];
const password = (m: Mailbox): string => `pw-${m}-S3cret`;

let t: TestServer;
let root: string;
let mailRoot: string;

const maildropPath = (m: string): string => join(mailRoot, m);

async function seed(m: Mailbox): Promise<void> {
  for (const [, msg] of MESSAGES) await t.store.deliver(m, msg);
}

/** Message count in the maildrop now, from a fresh snapshot (R-S3). */
async function stored(m: Mailbox): Promise<number> {
  const snap = await t.store.open(m, { exclusive: false });
  try {
    return snap.messages.length;
  } finally {
    await snap.release();
  }
}

/** Message files on disk (cur/ and new/), independent of poplar's own bookkeeping. */
async function filesOnDisk(m: Mailbox): Promise<number> {
  let n = 0;
  for (const sub of ['cur', 'new']) n += (await readdir(join(maildropPath(m), sub)).catch(() => [])).length;
  return n;
}

async function freshDir(...parts: string[]): Promise<string> {
  const d = join(root, ...parts);
  await mkdir(d, { recursive: true });
  return d;
}

async function makeMaildir(dir: string): Promise<void> {
  for (const sub of ['new', 'cur', 'tmp']) await mkdir(join(dir, sub), { recursive: true });
}

const ALL_KEYS = MESSAGES.map(([k]) => k);
const LATE = Buffer.from('From: late@example.org\nSubject: delivered after the first fetch\nMessage-ID: <late@poplar.test>\n\nnew\n');
const WITH_LATE = new Map([...EXPECTED, ['late', localForm(LATE)]]);

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'poplar-debian-clients-'));
  mailRoot = join(root, 'maildirs');
  t = await startTestServer({
    maildir: mailRoot,
    users: Object.fromEntries(MAILBOXES.map((m) => [m, { password: password(m) }])),
  });
});

after(async () => {
  await t?.close();
  if (root !== undefined) await rm(root, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// fetchmail (with an MDA script writing one file per message: exactly the bytes fetchmail hands on).

const SAVE_MDA = `#!/bin/sh
# save-mda OUTDIR [MAILDROP]: stores stdin as OUTDIR/NNN; with MAILDROP, also records how many
# message files the maildrop holds on disk at that moment (in OUTDIR.counts).
n=$(ls "$1" | wc -l); n=$((n + 1))
cat > "$1/$(printf %03d "$n")" || exit 75
if [ -n "$2" ]; then find "$2/cur" "$2/new" -type f | wc -l >> "$1.counts"; fi
exit 0
`;

const HANG_MDA = `#!/bin/sh
# hang-mda OUTDIR MARKER: stores stdin; on the third message, touches MARKER and hangs.
n=$(ls "$1" | wc -l); n=$((n + 1))
cat > "$1/$(printf %03d "$n")" || exit 75
if [ "$n" -ge 3 ]; then : > "$2"; exec sleep 120; fi
exit 0
`;

interface FetchmailSetup {
  readonly home: string;
  readonly rc: string;
  readonly out: string;
  readonly args: string[];
  readonly env: Record<string, string>;
}

async function fetchmailSetup(m: Mailbox, mode: 'keep' | 'nokeep', mda: string): Promise<FetchmailSetup> {
  const home = await freshDir(m, 'home');
  const out = await freshDir(m, 'out');
  const rc = join(home, 'fetchmailrc');
  await writeFile(
    rc,
    [
      'set no syslog',
      'set invisible',
      `poll 127.0.0.1 service ${t.port} protocol pop3 auth password timeout 20 uidl`,
      `  user "${m}" there with password "${password(m)}"`,
      `  sslproto '' no sslcertck`,
      `  ${mode} norewrite mda "${mda}"`,
      '',
    ].join('\n'),
  );
  await chmod(rc, 0o600); // fetchmail refuses an rc file others can read
  return {
    home,
    rc,
    out,
    args: ['-f', rc, '-i', join(home, '.fetchids'), '--pidfile', join(home, 'fetchmail.pid'), '--nodetach', '-v'],
    env: { HOME: home, FETCHMAILHOME: home },
  };
}

async function writeScript(name: string, text: string): Promise<string> {
  const p = join(root, name);
  await writeFile(p, text, { mode: 0o755 });
  return p;
}

describe('fetchmail', { skip: needProgram(CLIENTS.fetchmail.bin, CLIENTS.fetchmail.pkg) }, () => {
  it('R-K8 R-S19 fetchmail (keep) fetches every message byte for byte: bare LF, dot lines, no final newline, 8-bit, bare CR, 1 MB', { timeout: TEST_TIMEOUT_MS }, async () => {
    await seed('fmkeep');
    const mda = await writeScript('save-mda', SAVE_MDA);
    const f = await fetchmailSetup('fmkeep', 'keep', `${mda} ${join(root, 'fmkeep', 'out')}`);
    const r = await run('fetchmail', f.args, f.env);
    assert.equal(r.code, 0, `fetchmail should fetch mail: ${describeRun(r)}`);
    assertFetched(await fetched(f.out), ALL_KEYS);
    assert.equal(await stored('fmkeep'), MESSAGES.length, 'keep mode leaves every message on the server');
    assert.equal(await filesOnDisk('fmkeep'), MESSAGES.length);
  });

  it('R-S12 fetchmail --uidl with keep fetches nothing new on a second run, then only the new message', { timeout: TEST_TIMEOUT_MS }, async () => {
    const mda = join(root, 'save-mda');
    const f = await fetchmailSetup('fmkeep', 'keep', `${mda} ${join(root, 'fmkeep', 'out')}`);
    const ids = await readFile(join(f.home, '.fetchids'), 'latin1').catch(() => '');
    assert.equal(ids.trim().split('\n').length, MESSAGES.length, `fetchmail recorded one UIDL per message:\n${ids}`);

    const second = await run('fetchmail', f.args, f.env);
    assert.equal(second.code, 1, `fetchmail exit 1 means "no new mail": ${describeRun(second)}`);
    assert.equal((await readdir(f.out)).length, MESSAGES.length, 'nothing fetched on the second run');

    await t.store.deliver('fmkeep', LATE);
    const third = await run('fetchmail', f.args, f.env);
    assert.equal(third.code, 0, `fetchmail fetches the new message: ${describeRun(third)}`);
    assertFetched(await fetched(f.out), [...ALL_KEYS, 'late'], WITH_LATE);
    assert.equal(await stored('fmkeep'), MESSAGES.length + 1, 'keep mode leaves every message on the server');
  });

  it('R-K4 fetchmail killed mid-session (after DELEs) removes nothing', { timeout: TEST_TIMEOUT_MS }, async () => {
    await seed('fmkill');
    const mda = await writeScript('hang-mda', HANG_MDA);
    const marker = join(root, 'fmkill', 'hanging');
    const f = await fetchmailSetup('fmkill', 'nokeep', `${mda} ${join(root, 'fmkill', 'out')} ${marker}`);
    let pid: number | undefined;
    const running = run('fetchmail', f.args, f.env, { onStart: (p) => (pid = p) });
    try {
      await waitFor(() => existsSync(marker), 30_000);
    } finally {
      killGroup(pid); // fetchmail and the hanging MDA: the connection drops without QUIT
    }
    const r = await running;
    assert.equal(r.signal, 'SIGKILL', `fetchmail was killed: ${describeRun(r)}`);
    await waitFor(() => t.logs.some((l) => l.event === 'session_end' && l.mailbox === 'fmkill'), 10_000);
    const end = t.logs.find((l) => l.event === 'session_end' && l.mailbox === 'fmkill')!;
    assert.notEqual(end.reason, 'quit', 'the session ended without QUIT');
    assert.ok(Number(end.dele) >= 2, `fetchmail had marked messages deleted before the drop: ${JSON.stringify(end)}`);
    assert.equal(await stored('fmkill'), MESSAGES.length, 'no UPDATE without QUIT: every message is still there');
    assert.equal(await filesOnDisk('fmkill'), MESSAGES.length);
  });

  it('R-K4 R-S11 fetchmail (nokeep) deletes only after a complete session', { timeout: TEST_TIMEOUT_MS }, async () => {
    await seed('fmdel');
    const mda = join(root, 'save-mda');
    const out = join(root, 'fmdel', 'out');
    const f = await fetchmailSetup('fmdel', 'nokeep', `${mda} ${out} ${maildropPath('fmdel')}`);
    const r = await run('fetchmail', f.args, f.env);
    assert.equal(r.code, 0, `fetchmail should fetch mail: ${describeRun(r)}`);
    assertFetched(await fetched(f.out), ALL_KEYS);
    // While fetchmail delivered each message (after DELE of the earlier ones), all were still on disk.
    const counts = (await readFile(`${out}.counts`, 'latin1')).trim().split('\n').map(Number);
    assert.deepEqual(counts, MESSAGES.map(() => MESSAGES.length), 'files on disk during the session');
    assert.equal(await stored('fmdel'), 0, 'QUIT removed every fetched message');
    assert.equal(await filesOnDisk('fmdel'), 0);
  });
});

// ---------------------------------------------------------------------------------------------
// mpop (Maildir delivery; its default is to track UIDLs and fetch only new mail).

async function mpopSetup(m: Mailbox, keep: boolean): Promise<{ rc: string; out: string; env: Record<string, string> }> {
  const home = await freshDir(m, 'home');
  const out = join(root, m, 'maildir');
  await makeMaildir(out);
  const rc = join(home, 'mpoprc');
  await writeFile(
    rc,
    [
      'defaults',
      'tls off',
      'auth user',
      'timeout 20',
      `uidls_file ${join(home, 'uidls')}`,
      `account ${m}`,
      'host 127.0.0.1',
      `port ${t.port}`,
      `user ${m}`,
      `password ${password(m)}`,
      `keep ${keep ? 'on' : 'off'}`,
      'received_header off',
      `delivery maildir ${out}`,
      '',
    ].join('\n'),
  );
  await chmod(rc, 0o600); // mpop refuses an rc file holding a password that others can read
  return { rc, out, env: { HOME: home } };
}

describe('mpop', { skip: needProgram(CLIENTS.mpop.bin, CLIENTS.mpop.pkg) }, () => {
  it('R-K8 R-S19 R-X2 mpop (keep on, pipelining auto) fetches every message byte for byte', { timeout: TEST_TIMEOUT_MS }, async () => {
    await seed('mpkeep');
    const s = await mpopSetup('mpkeep', true);
    const r = await run('mpop', ['-C', s.rc, 'mpkeep'], s.env);
    assert.equal(r.code, 0, `mpop should fetch mail: ${describeRun(r)}`);
    assertFetched(await fetched(join(s.out, 'new')), ALL_KEYS);
    assert.equal(await stored('mpkeep'), MESSAGES.length, 'keep on leaves every message on the server');
  });

  it("R-S12 mpop's UIDL tracking fetches nothing new on a second run, then only the new message", { timeout: TEST_TIMEOUT_MS }, async () => {
    const s = await mpopSetup('mpkeep', true);
    const second = await run('mpop', ['-C', s.rc, 'mpkeep'], s.env);
    assert.equal(second.code, 0, describeRun(second));
    assert.match(second.output, /new: no messages/, describeRun(second));
    assert.equal((await readdir(join(s.out, 'new'))).length, MESSAGES.length, 'nothing fetched on the second run');

    await t.store.deliver('mpkeep', LATE);
    const third = await run('mpop', ['-C', s.rc, 'mpkeep'], s.env);
    assert.equal(third.code, 0, describeRun(third));
    assert.match(third.output, /new: 1 message/, describeRun(third));
    assertFetched(await fetched(join(s.out, 'new')), [...ALL_KEYS, 'late'], WITH_LATE);
    assert.equal(await stored('mpkeep'), MESSAGES.length + 1);
  });

  it('R-K4 R-S11 mpop (keep off) fetches everything and the maildrop is empty after QUIT', { timeout: TEST_TIMEOUT_MS }, async () => {
    await seed('mpdel');
    const s = await mpopSetup('mpdel', false);
    const r = await run('mpop', ['-C', s.rc, 'mpdel'], s.env);
    assert.equal(r.code, 0, `mpop should fetch mail: ${describeRun(r)}`);
    assertFetched(await fetched(join(s.out, 'new')), ALL_KEYS);
    assert.equal(await stored('mpdel'), 0, 'QUIT removed every fetched message');
    assert.equal(await filesOnDisk('mpdel'), 0);
    const again = await run('mpop', ['-C', s.rc, 'mpdel'], s.env);
    assert.equal(again.code, 0, describeRun(again));
    assert.match(again.output, /no messages/, describeRun(again));
  });
});

// ---------------------------------------------------------------------------------------------
// getmail6 (SimplePOP3Retriever, Maildir destination). getmail refuses to write mail as root, so
// when the tests run as root its Maildir destination drops to `nobody`, who must own the folder.

/** getmail writes one header of its own (no envelope sender over POP3): `Return-Path: <unknown>`. */
const GETMAIL_ADDED = /^Return-Path: [^\n]*\n/;

async function getmailSetup(m: Mailbox, readAll: boolean, del: boolean): Promise<{ args: string[]; out: string; env: Record<string, string> }> {
  const home = await freshDir(m, 'home');
  const out = join(root, m, 'maildir');
  await makeMaildir(out);
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(spawnSync('id', ['-u', 'nobody']).stdout.toString().trim());
    const gid = Number(spawnSync('id', ['-g', 'nobody']).stdout.toString().trim());
    assert.ok(Number.isInteger(uid) && Number.isInteger(gid), 'running as root needs a "nobody" user for getmail');
    for (const d of [root, join(root, m)]) await chmod(d, 0o711);
    for (const d of [out, join(out, 'new'), join(out, 'cur'), join(out, 'tmp')]) await chown(d, uid, gid);
  }
  await writeFile(
    join(home, 'getmailrc'),
    [
      '[retriever]',
      'type = SimplePOP3Retriever',
      'server = 127.0.0.1',
      `port = ${t.port}`,
      `username = ${m}`,
      `password = ${password(m)}`,
      'timeout = 20',
      '',
      '[destination]',
      'type = Maildir',
      `path = ${out}/`,
      ...(asRoot ? ['user = nobody'] : []),
      '',
      '[options]',
      'verbose = 2',
      `read_all = ${readAll}`,
      `delete = ${del}`,
      'delivered_to = false',
      'received = false',
      'message_log_syslog = false',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return { args: ['--getmaildir', home, '--rcfile', 'getmailrc'], out, env: { HOME: home } };
}

/**
 * getmail6 has a race of its own: it forks a child for each Maildir delivery and only then installs
 * the SIGCHLD handler that tells it the child is done (getmailcore/baseclasses.py forkchild,
 * _prepare_child, _wait_for_child). A child that exits before that is never noticed: getmail waits
 * its `timeout` and exits 127 with "waiting child pid N timed out" (seen three times in loaded
 * runs, the POP3 session intact). So the tests run getmail's own program through this launcher,
 * which replaces only that wait with a plain waitpid(2) and the same checks of the child's status;
 * the POP3 client is getmail's, unchanged.
 */
const GETMAIL_LAUNCHER = [
  'import os, runpy, sys',
  'from getmailcore import baseclasses',
  'from getmailcore.exceptions import getmailOperationError',
  'def _prepare_child(self):',
  '    pass',
  'def _wait_for_child(self, childpid):',
  '    pid, status = os.waitpid(childpid, 0)',
  '    if os.WIFSIGNALED(status):',
  "        raise getmailOperationError('child pid %d killed by signal %d' % (pid, os.WTERMSIG(status)))",
  '    if not os.WIFEXITED(status):',
  "        raise getmailOperationError('child pid %d failed to exit' % pid)",
  '    return os.WEXITSTATUS(status)',
  'baseclasses.ForkingBase._prepare_child = _prepare_child',
  'baseclasses.ForkingBase._wait_for_child = _wait_for_child',
  'sys.argv = sys.argv[1:]',
  "runpy.run_path(sys.argv[0], run_name='__main__')",
].join('\n');

/** getmail (found on the PATH, as needProgram found it) through GETMAIL_LAUNCHER, run by its own interpreter (its `#!` line). */
async function runGetmail(s: { args: string[]; env: Record<string, string> }): Promise<RunResult> {
  const path = spawnSync('sh', ['-c', 'command -v getmail'], { encoding: 'utf8' }).stdout.trim();
  assert.ok(path !== '', 'getmail is on the PATH');
  const python = /^#!\s*(\S+)/.exec((await readFile(path, 'latin1')).split('\n', 1)[0]!)?.[1] ?? 'python3';
  return run(python, ['-c', GETMAIL_LAUNCHER, path, ...s.args], s.env);
}

describe('getmail', { skip: needProgram(CLIENTS.getmail.bin, CLIENTS.getmail.pkg) }, () => {
  it('R-K8 R-S19 getmail (read_all, no delete) fetches every message byte for byte', { timeout: TEST_TIMEOUT_MS }, async () => {
    await seed('gmkeep');
    const s = await getmailSetup('gmkeep', true, false);
    const r = await runGetmail(s);
    assert.equal(r.code, 0, `getmail should fetch mail: ${describeRun(r)}`);
    assertFetched(await fetched(join(s.out, 'new'), GETMAIL_ADDED), ALL_KEYS);
    assert.equal(await stored('gmkeep'), MESSAGES.length, 'delete = false leaves every message on the server');
  });

  it("R-S12 getmail's read_all = false fetches nothing new on a second run, then only the new message", { timeout: TEST_TIMEOUT_MS }, async () => {
    const s = await getmailSetup('gmkeep', false, false);
    const second = await runGetmail(s);
    assert.equal(second.code, 0, describeRun(second));
    assert.match(second.output, /0 messages \(0 bytes\) retrieved, 6 skipped/, describeRun(second));
    assert.equal((await readdir(join(s.out, 'new'))).length, MESSAGES.length, 'nothing fetched on the second run');

    await t.store.deliver('gmkeep', LATE);
    const third = await runGetmail(s);
    assert.equal(third.code, 0, describeRun(third));
    assertFetched(await fetched(join(s.out, 'new'), GETMAIL_ADDED), [...ALL_KEYS, 'late'], WITH_LATE);
    assert.equal(await stored('gmkeep'), MESSAGES.length + 1);
  });

  it('R-K4 R-S11 getmail (delete = true) fetches everything and the maildrop is empty after QUIT', { timeout: TEST_TIMEOUT_MS }, async () => {
    await seed('gmdel');
    const s = await getmailSetup('gmdel', true, true);
    const r = await runGetmail(s);
    assert.equal(r.code, 0, `getmail should fetch mail: ${describeRun(r)}`);
    assertFetched(await fetched(join(s.out, 'new'), GETMAIL_ADDED), ALL_KEYS);
    assert.equal(await stored('gmdel'), 0, 'QUIT removed every fetched message');
    assert.equal(await filesOnDisk('gmdel'), 0);
  });
});

/**
 * The Postfix recipes of docs/delivery.md (R-X6), run for real: a private Postfix instance (its
 * own config, queue and data directories in a temp dir, smtpd on a free loopback port, started
 * with `postfix -c DIR start`; the test runs as root so that master can start) configured with
 * exactly the lines in packaging/postfix/ (which the doc shows verbatim), only the site values
 * replaced: poplar's LMTP port, the poplar binary and config paths, the recipient table path.
 * python3's smtplib sends one message to a known and an unknown user; the unknown one must be
 * refused at RCPT time (not accepted and bounced later) and the known one must read the message
 * over POP3 byte for byte.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { MAIN } from '../cli/run.js';
import { needProgram } from '../helpers/external.js';
import { addUsers, startPoplar } from '../helpers/poplar-process.js';
import { popFetch } from '../helpers/python-clients.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const packaged = (name: string): Promise<string> => readFile(join(ROOT, 'packaging', 'postfix', name), 'utf8');

/** What the test instance needs besides the recipe: its own directories, a loopback smtpd, no chroot. */
function baseMainCf(dir: string): string {
  return [
    'compatibility_level = 3.6',
    `queue_directory = ${dir}/queue`,
    `data_directory = ${dir}/data`,
    `maillog_file = ${dir}/maillog`,
    `maillog_file_prefixes = ${dir}`,
    'mail_owner = postfix',
    'setgid_group = postdrop',
    'myhostname = mx.poplar-test.example',
    'mydestination =',
    'inet_interfaces = 127.0.0.1',
    'inet_protocols = ipv4',
    'mynetworks = 127.0.0.0/8',
    'alias_maps =',
    'alias_database =',
    'relayhost =',
    'biff = no',
    'recipient_delimiter = +',
    '',
  ].join('\n');
}

function baseMasterCf(smtpPort: number): string {
  const services = [
    `127.0.0.1:${smtpPort} inet n - n - - smtpd`,
    'pickup unix n - n 60 1 pickup',
    'cleanup unix n - n - 0 cleanup',
    'qmgr unix n - n 300 1 qmgr',
    'rewrite unix - - n - - trivial-rewrite',
    'bounce unix - - n - 0 bounce',
    'defer unix - - n - 0 bounce',
    'trace unix - - n - 0 bounce',
    'verify unix - - n - 1 verify',
    'proxymap unix - - n - - proxymap',
    'smtp unix - - n - - smtp',
    'showq unix n - n - - showq',
    'error unix - - n - - error',
    'retry unix - - n - - error',
    'discard unix - - n - - discard',
    'lmtp unix - - n - - lmtp',
    'anvil unix - - n - 1 anvil',
    'scache unix - - n - 1 scache',
    'postlog unix-dgram n - n - 1 postlogd',
  ];
  return `${services.join('\n')}\n`;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

interface PrivatePostfix {
  readonly smtpPort: number;
  readonly configDir: string;
  log(): Promise<string>;
  stop(): Promise<void>;
}

/** Starts a private Postfix in `dir` (mode 0755: the postfix and poplar users must reach it). */
async function startPostfix(dir: string, mainCf: string, masterCf: string): Promise<PrivatePostfix> {
  const smtpPort = await freePort();
  const configDir = join(dir, 'etc');
  await mkdir(configDir, { recursive: true });
  await mkdir(join(dir, 'queue'));
  await mkdir(join(dir, 'data'));
  const postfixUid = Number((await run('id', ['-u', 'postfix'])).stdout.trim());
  await chown(join(dir, 'data'), postfixUid, 0);
  await writeFile(join(configDir, 'main.cf'), baseMainCf(dir) + mainCf);
  await writeFile(join(configDir, 'master.cf'), baseMasterCf(smtpPort) + masterCf);
  const check = await run('postconf', ['-c', configDir, '-n']); // refuses a broken main.cf
  assert.ok(check.stdout.includes('virtual_transport'), check.stdout);
  const log = (): Promise<string> => readFile(join(dir, 'maillog'), 'utf8').catch(() => '');
  try {
    await run('postfix', ['-c', configDir, 'start']);
  } catch (err) {
    throw new Error(`postfix -c ${configDir} start failed: ${(err as Error).message}\n${await log()}`);
  }
  return {
    smtpPort,
    configDir,
    log,
    async stop() {
      await run('postfix', ['-c', configDir, 'stop']).catch(() => undefined);
    },
  };
}

const SMTP_SCRIPT = String.raw`
import base64, json, smtplib, sys
spec = json.loads(sys.stdin.read())
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='client.poplar-test.example', timeout=60)
s.ehlo()
s.mail(spec['from'], ['BODY=8BITMIME'])
rcpt = []
for r in spec['to']:
    c, m = s.rcpt(r)
    rcpt.append([c, m.decode()])
code, resp = s.data(base64.b64decode(spec['message']))
s.quit()
print(json.dumps({'rcpt': rcpt, 'data': [code, resp.decode()]}))
`;

async function smtpSend(port: number, from: string, to: readonly string[], message: Buffer): Promise<{ rcpt: [number, string][]; data: [number, string] }> {
  const child = run('python3', ['-c', SMTP_SCRIPT, String(port)], { timeout: 90_000 });
  child.child.stdin!.end(JSON.stringify({ from, to, message: message.toString('base64') }));
  return JSON.parse((await child).stdout) as { rcpt: [number, string][]; data: [number, string] };
}

/** A message with what a relay must keep byte for byte: a dot line, 8-bit text, a blank line, no trailing spaces lost. */
const BODY = 'first line\r\n.a line starting with a dot\r\n..two dots\r\n\r\nGr\u00fc\u00dfe, 8-bit \u00e9\u00e8\r\n\tindented\r\nlast\r\n';
function message(subject: string): Buffer {
  return Buffer.from(`From: sender@remote.poplar-test.example\r\nTo: alice@example.org\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${BODY}`, 'utf8');
}

/** The body (after the first blank line) of a message read over POP3. */
function bodyOf(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  return text.slice(text.indexOf('\r\n\r\n') + 4);
}

describe('Postfix recipes (docs/delivery.md)', { skip: needProgram('postfix', 'postfix') }, () => {
  it('R-X6 the documented files are the ones docs/delivery.md shows', async () => {
    const doc = await readFile(join(ROOT, 'docs', 'delivery.md'), 'utf8');
    for (const name of ['main.cf.lmtp', 'main.cf.pipe', 'master.cf.pipe', 'poplar-recipients']) {
      assert.ok(doc.includes(await packaged(name)), `docs/delivery.md shows packaging/postfix/${name} verbatim`);
    }
  });

  it('R-X6 Postfix → LMTP (main.cf.lmtp): an unknown user is refused at RCPT with 550 5.1.1, a known user reads the message byte for byte over POP3', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'poplar-postfix-lmtp-'));
    await chmod(dir, 0o755);
    const p = await startPoplar({ users: { alice: 'wonderland' } });
    let postfix: PrivatePostfix | undefined;
    try {
      const mainCf = (await packaged('main.cf.lmtp')).replaceAll('127.0.0.1:24', `127.0.0.1:${p.lmtpPort}`);
      postfix = await startPostfix(join(dir, 'postfix'), mainCf, '');
      const sent = message('through postfix and lmtp');
      const r = await smtpSend(postfix.smtpPort, 'sender@remote.poplar-test.example', ['alice@example.org', 'nobody@example.org', 'Alice+news@example.org'], sent);
      assert.equal(r.rcpt[0]![0], 250, JSON.stringify(r));
      assert.equal(r.rcpt[1]![0], 550, 'the unknown user is refused at RCPT time');
      assert.match(r.rcpt[1]![1], /^5\.1\.1 <nobody@example\.org>/);
      assert.equal(r.rcpt[2]![0], 250, 'an address with the recipient delimiter is poplar user alice');
      assert.equal(r.data[0], 250);
      let got = await popFetch(p.pop3Port, 'alice', 'wonderland');
      const deadline = Date.now() + 30_000;
      while (got.messages.length === 0 && Date.now() < deadline) {
        await new Promise((res) => setTimeout(res, 250));
        got = await popFetch(p.pop3Port, 'alice', 'wonderland');
      }
      assert.equal(got.messages.length, 1, `alice and Alice+news share one maildrop: one copy\n${await postfix.log()}`);
      assert.equal(bodyOf(got.messages[0]!.bytes), BODY, 'the body arrives byte for byte');
      const head = got.messages[0]!.bytes.toString('utf8');
      assert.match(head, /^Return-Path: <sender@remote\.poplar-test\.example>\r\nDelivered-To: /);
      assert.match(head, /\r\nReceived: from client\.poplar-test\.example \(localhost \[127\.0\.0\.1\]\)\r\n\tby mx\.poplar-test\.example \(Postfix\)/);
      assert.ok(head.includes(sent.subarray(0, sent.indexOf('\r\n\r\n')).toString('utf8')), 'the original header section is kept');
      assert.equal((await p.logged('delivered')).length, 1);
      assert.match(await postfix.log(), /reject: RCPT from \S+: 550 5\.1\.1 <nobody@example\.org>/);
    } finally {
      await postfix?.stop();
      await p.cleanup();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('R-X6 Postfix → pipe → poplar deliver as the poplar user (main.cf.pipe, master.cf.pipe, poplar-recipients): unknown user refused at RCPT, the known user reads the message byte for byte', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'poplar-postfix-pipe-'));
    await chmod(dir, 0o755);
    const created = spawnSync('id', ['-u', 'poplar']).status !== 0;
    if (created) await run('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', 'poplar']);
    let postfix: PrivatePostfix | undefined;
    try {
      const uid = Number((await run('id', ['-u', 'poplar'])).stdout.trim());
      const gid = Number((await run('id', ['-g', 'poplar'])).stdout.trim());
      // poplar's files as the packaged unit leaves them: a data directory owned by poplar, mode 0700.
      const data = join(dir, 'data');
      await mkdir(data, { mode: 0o700 });
      await addUsers(data, { alice: 'wonderland' });
      await run('chown', ['-R', `${uid}:${gid}`, data]);
      const config = join(dir, 'poplar.toml');
      await writeFile(config, `[server]\ndata_dir = "${data}"\n`, { mode: 0o644 });
      const bin = join(dir, 'poplar');
      await writeFile(bin, `#!/bin/sh\nexec ${process.execPath} ${MAIN} "$@"\n`, { mode: 0o755 });
      const map = join(dir, 'poplar-recipients');
      const site = (text: string): string =>
        text.replaceAll('/usr/local/bin/poplar', bin).replaceAll('/etc/poplar/poplar.toml', config).replaceAll('/etc/postfix/poplar-recipients', map);

      const script = join(dir, 'poplar-recipients.sh');
      await writeFile(script, await packaged('poplar-recipients'), { mode: 0o755 });
      await run(script, ['example.org'], { env: { ...process.env, POPLAR: bin, CONFIG: config, MAP: map, POSTFIX: 'true' } });
      assert.equal(await readFile(map, 'utf8'), 'alice@example.org\tOK\n');

      postfix = await startPostfix(join(dir, 'postfix'), site(await packaged('main.cf.pipe')), site(await packaged('master.cf.pipe')));
      const r = await smtpSend(postfix.smtpPort, 'sender@remote.poplar-test.example', ['alice@example.org', 'nobody@example.org'], message('through postfix and pipe'));
      assert.equal(r.rcpt[0]![0], 250, JSON.stringify(r));
      assert.equal(r.rcpt[1]![0], 550, 'the unknown user is refused at RCPT time');
      assert.match(r.rcpt[1]![1], /^5\.1\.1 <nobody@example\.org>/);
      assert.equal(r.data[0], 250);
      const inbox = join(data, 'mail', 'alice', 'new');
      const log = postfix.log;
      await waitFor(() => spawnSync('sh', ['-c', `ls "${inbox}" 2>/dev/null | grep -q .`]).status === 0, 30_000).catch(async () => {
        throw new Error(`no delivery into ${inbox}:\n${await log()}`);
      });
      const [file] = await readdir(inbox);
      assert.equal((await stat(join(inbox, file!))).uid, uid, 'poplar deliver ran as the poplar user');
      const sentLine = /to=<alice@example\.org>, relay=poplar, .*status=sent \(delivered via poplar service\)/;
      for (const until = Date.now() + 10_000; !sentLine.test(await log()) && Date.now() < until; ) await new Promise((res) => setTimeout(res, 100));
      assert.match(await log(), sentLine);

      const p = await startPoplar({ dataDir: data, users: {} });
      try {
        const got = await popFetch(p.pop3Port, 'alice', 'wonderland');
        assert.equal(got.messages.length, 1);
        assert.equal(bodyOf(got.messages[0]!.bytes), BODY, 'the body arrives byte for byte');
        assert.match(got.messages[0]!.bytes.toString('utf8'), /^Return-Path: <sender@remote\.poplar-test\.example>\r\nDelivered-To: alice@example\.org\r\nReceived: by \S+ \(poplar\) with local id /);
      } finally {
        await p.cleanup();
      }
    } finally {
      await postfix?.stop();
      if (created) await run('userdel', ['poplar']).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

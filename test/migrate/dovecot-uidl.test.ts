/**
 * R-X11 UIDL continuity against a real Dovecot (Debian's dovecot-pop3d and dovecot-lmtpd): a
 * private Dovecot, started with bench/compare's config, takes mail over LMTP and shows its UIDLs
 * over POP3; after `poplar import` of its Maildir, poplar's UIDL list is the same, byte for byte;
 * after `poplar export`, the same Dovecot serving the export shows the same list again.
 *
 * Two maildrops: alice's, under Dovecot's default `pop3_uidl_format = %08Xu%08Xv` (which Dovecot
 * 2.3 prints in lower-case hex, whatever its documentation says of %X), with a deletion and a uid
 * past 9 so the hex has letters; and bob's, whose first messages were listed under
 * `pop3_uidl_format = %v.%u` with `pop3_save_uidl = yes` (so dovecot-uidlist holds their P fields)
 * and whose later ones arrived after the format went back to the default.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDovecot, type Ports, type Server } from '../../bench/compare/servers.js';
import { testCerts } from '../helpers/certs.js';
import { needProgram } from '../helpers/external.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { startPoplar, type PoplarProcess } from '../helpers/poplar-process.js';
import { lmtpSend, popFetch } from '../helpers/python-clients.js';

const PASSWORDS = { alice: 'wonderland', bob: 'builder', carol: 'singer', dave: 'diver' } as const;
type User = keyof typeof PASSWORDS;

/** Three ports free on 127.0.0.1 (Dovecot cannot listen on port 0 and report the port). */
async function freePorts(): Promise<Ports> {
  const servers = await Promise.all(
    [0, 1, 2].map(
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject).listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const [pop3, pop3s, lmtp] = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return { pop3: pop3!, pop3s: pop3s!, lmtp: lmtp! };
}

const message = (to: User, n: number): Buffer =>
  Buffer.from(`From: sender@example.org\r\nTo: ${to}@example.org\r\nSubject: ${to} ${n}\r\nMessage-ID: <${to}.${n}@example.org>\r\n\r\nbody ${n}\r\n.dot line\r\n`);

/** The end of a Dovecot log, for a failure's message. */
const logTail = async (dir: string): Promise<string> =>
  (await readFile(join(dir, 'dovecot.log'), 'utf8').catch(() => '')).split('\n').slice(-15).join('\n');

/** Delivers messages `from`..`to` (inclusive) to `user` over Dovecot's LMTP, each answered 250. */
async function deliver(dir: string, port: number, user: User, from: number, to: number): Promise<void> {
  const txs = [];
  for (let n = from; n <= to; n++) txs.push({ from: 'sender@example.org', to: [user], message: message(user, n) });
  const r = await lmtpSend(port, txs);
  for (const d of r.deliveries) assert.deepEqual(d.data.map((x) => x[0]), [250], `${JSON.stringify(d)}\n${await logTail(dir)}`);
}

const uidls = (lines: readonly string[]): string[] => lines.map((l) => l.split(' ')[1]!);

/** Dovecot's master starts as root and switches to dovenull, dovecot and the userdb's nobody. */
const skip =
  needProgram(['dovecot', '/usr/lib/dovecot/pop3', '/usr/lib/dovecot/lmtp'], 'dovecot-pop3d dovecot-lmtpd') ||
  (process.getuid?.() === 0 ? false : 'needs root to start a private Dovecot');

describe('R-X11 UIDL continuity with a real Dovecot', { skip }, () => {
  let work: string;
  let dir: string;
  let ports: Ports;
  let dovecot: Server | undefined;
  let p: PoplarProcess;
  /** The UIDL lines Dovecot showed (`n uidl`, as poplib returns them). */
  const shown: Partial<Record<User, string[]>> = {};

  const start = async (extra = ''): Promise<Server> => {
    const cert = await testCerts();
    dovecot = await startDovecot({ work, dir, ports, usersFile: join(work, 'dovecot-users'), cert, authCache: false, extra });
    return dovecot;
  };
  const stop = async (): Promise<void> => {
    await dovecot?.stop();
    dovecot = undefined;
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'poplar-dovecot-uidl-'));
    await chmod(work, 0o755); // Dovecot's mail processes run as the userdb's uid=nobody
    dir = join(work, 'dovecot');
    ports = await freePorts();
    await writeFile(join(work, 'dovecot-users'), Object.entries(PASSWORDS).map(([u, pw]) => `${u}:{PLAIN}${pw}\n`).join(''), { mode: 0o644 });

    // First Dovecot: bob's UIDLs listed as %v.%u and saved into dovecot-uidlist (P fields).
    await start('pop3_uidl_format = %v.%u\npop3_save_uidl = yes');
    await deliver(dir, ports.lmtp, 'alice', 1, 11);
    await deliver(dir, ports.lmtp, 'bob', 1, 3);
    const saved = await popFetch(ports.pop3, 'bob', PASSWORDS.bob);
    assert.equal(saved.uidl.length, 3);
    const c = await Pop3Client.connect(ports.pop3);
    await c.login('alice', PASSWORDS.alice);
    assert.match(await c.cmd('DELE 2'), /^\+OK/);
    assert.match(await c.cmd('QUIT'), /^\+OK/);
    c.close();
    await stop();

    // Second Dovecot: the default format; more mail for both.
    await start();
    await deliver(dir, ports.lmtp, 'alice', 12, 12);
    await deliver(dir, ports.lmtp, 'bob', 4, 5);
    shown.alice = (await popFetch(ports.pop3, 'alice', PASSWORDS.alice)).uidl;
    shown.bob = (await popFetch(ports.pop3, 'bob', PASSWORDS.bob)).uidl;
    await stop();

    // What the scenario rests on: Dovecot's own records and what it showed.
    const bobList = await readFile(join(dir, 'mail/bob/dovecot-uidlist'), 'utf8');
    assert.deepEqual(uidls(shown.bob).slice(0, 3), uidls(saved.uidl), 'saved P fields outlive a change of pop3_uidl_format');
    for (const u of uidls(saved.uidl)) assert.match(bobList, new RegExp(` P${u.replace('.', '\\.')}[ :]`));
    assert.equal(shown.alice.length, 11);
    assert.ok(uidls(shown.alice).every((u) => /^[0-9a-f]{16}$/.test(u)), `lower-case %08Xu%08Xv: ${shown.alice.join(', ')}`);
    assert.ok(uidls(shown.alice).some((u) => u.startsWith('0000000a')), 'uid 10 shows a hex letter');

    p = await startPoplar({ users: { ...PASSWORDS } });
  });

  after(async () => {
    await stop();
    await p?.cleanup();
    await rm(work, { recursive: true, force: true });
  });

  it('R-X11 poplar import of a Maildir Dovecot served keeps its UIDL list byte for byte (default format, saved P fields)', async () => {
    // Regression: Dovecot's default UIDLs were rebuilt in upper-case hex on import, so every
    // leave-on-server client downloaded the whole maildrop again.
    for (const user of ['alice', 'bob'] as const) {
      const r = await p.cli(['import', '--user', user, join(dir, 'mail', user)]);
      assert.equal(r.code, 0, r.stderr);
      const n = shown[user]!.length;
      assert.match(r.stdout, new RegExp(`imported ${n} message\\(s\\).*; ${n} kept their UIDL, 0 got a new one`));
    }
    for (const user of ['alice', 'bob'] as const) {
      const got = await popFetch(p.pop3Port, user, PASSWORDS[user]);
      assert.deepEqual(got.uidl, shown[user], `${user}: poplar shows what Dovecot showed`);
      got.messages.forEach((m, i) => assert.match(m.bytes.toString(), new RegExp(`^Subject: ${user} \\d+\\r$`, 'm'), `message ${i + 1}`));
    }
  });

  it('R-X11 poplar export keeps the UIDLs exactly: the uidlist P fields, X-UIDL, and Dovecot serving the exported Maildir', async () => {
    const mbox = join(work, 'bob.mbox');
    const ex = await p.cli(['export', '--user', 'bob', '--format', 'mbox', mbox]);
    assert.equal(ex.code, 0, ex.stderr);
    const xuidl = [...(await readFile(mbox, 'latin1')).matchAll(/^X-UIDL: (.*)$/gm)].map((m) => m[1]!.replace(/\r$/, ''));
    assert.deepEqual(xuidl, uidls(shown.bob!), 'X-UIDL headers');

    for (const [from, to] of [['alice', 'carol'], ['bob', 'dave']] as const) {
      const out = join(work, `export-${from}`);
      const r = await p.cli(['export', '--user', from, '--format', 'maildir', out]);
      assert.equal(r.code, 0, r.stderr);
      const records = (await readFile(join(out, 'dovecot-uidlist'), 'utf8')).split('\n').slice(1).filter((l) => l !== '');
      assert.deepEqual(records.map((l) => / P(\S+) /.exec(l)?.[1]), uidls(shown[from]!), `${from}: P fields`);
      assert.equal((await readdir(join(out, 'cur'))).length, shown[from]!.length);
      await rename(out, join(dir, 'mail', to));
      execFileSync('chown', ['-R', '65534:65534', join(dir, 'mail', to)]); // the Dovecot userdb's uid=nobody
    }
    await start();
    assert.deepEqual((await popFetch(ports.pop3, 'carol', PASSWORDS.carol)).uidl, shown.alice, 'Dovecot shows alice\'s UIDLs for her export');
    assert.deepEqual((await popFetch(ports.pop3, 'dave', PASSWORDS.dave)).uidl, shown.bob, 'Dovecot shows bob\'s UIDLs for his export');
    await stop();
  });
});

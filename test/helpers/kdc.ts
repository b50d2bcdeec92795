/**
 * A private MIT Kerberos KDC for the GSSAPI tests (R-X20), started from nothing in a temp
 * directory with Debian's krb5-kdc, krb5-admin-server and krb5-user: a krb5.conf and kdc.conf,
 * `kdb5_util create -s` and `kadmin.local` per realm, `krb5kdc -n` on a loopback port (UDP and
 * TCP) below 32768. Two realms on the one KDC: POPLAR.TEST (the server's, with users and the
 * service principal pop/localhost in a keytab) and OTHER.TEST, which trusts POPLAR.TEST one way
 * (krbtgt/POPLAR.TEST@OTHER.TEST in both databases) so an OTHER.TEST user gets a real ticket for
 * pop/localhost@POPLAR.TEST. `clockskew = 1`, so a ticket is refused one second after it ends.
 * Clients run with `env(ccache)`: KRB5_CONFIG for the temp krb5.conf and their own KRB5CCNAME.
 * docs/authentication.md shows the same setup by hand.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runProcess, type Run } from '../cli/run.js';
import { freeLowPort } from './ports.js';

export const REALM = 'POPLAR.TEST';
export const OTHER_REALM = 'OTHER.TEST';
const MASTER_PASSWORD = 'kdc-master-secret';
const TRUST_PASSWORD = 'cross-realm-trust-key';

export interface Kdc {
  readonly dir: string;
  readonly port: number;
  /** The krb5.conf for clients and the server (KRB5_CONFIG). */
  readonly krb5Conf: string;
  /** The keytab holding pop/localhost@POPLAR.TEST. */
  readonly keytab: string;
  /** process.env plus KRB5_CONFIG, a private replay cache directory and, given a name, KRB5CCNAME. */
  env(ccache?: string): NodeJS.ProcessEnv;
  /** `kadmin.local -q query` in `realm`. */
  admin(query: string, realm?: string): Promise<Run>;
  /** kinit `principal` with `password` into the credential cache `ccache` (a file in dir); extra args before the principal. */
  kinit(principal: string, password: string, ccache: string, args?: readonly string[]): Promise<Run>;
  stop(): Promise<void>;
}

const SBIN = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;

async function must(r: Promise<Run>, what: string): Promise<Run> {
  const run = await r;
  if (run.code !== 0) throw new Error(`${what} failed (${run.code}): ${run.stderr}${run.stdout}`);
  return run;
}


async function waitForTcp(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((res) => {
      const s = createConnection({ host: '127.0.0.1', port }, () => {
        s.destroy();
        res(true);
      });
      s.once('error', () => res(false));
    });
    if (up) return;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`krb5kdc did not start: ${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startKdc(): Promise<Kdc> {
  const dir = await mkdtemp(join(tmpdir(), 'poplar-kdc-'));
  const port = await freeLowPort({ udp: true });
  const krb5Conf = join(dir, 'krb5.conf');
  const kdcConf = join(dir, 'kdc.conf');
  const keytab = join(dir, 'pop.keytab');
  const realmBlock = (r: string): string => `  ${r} = {\n    kdc = 127.0.0.1:${port}\n  }\n`;
  await writeFile(krb5Conf, [
    '[libdefaults]',
    `  default_realm = ${REALM}`,
    '  dns_lookup_kdc = false',
    '  dns_lookup_realm = false',
    '  dns_canonicalize_hostname = false',
    '  rdns = false',
    '  clockskew = 1',
    '[realms]',
    realmBlock(REALM) + realmBlock(OTHER_REALM),
    '[domain_realm]',
    `  localhost = ${REALM}`,
    '',
  ].join('\n'));
  const kdcRealm = (r: string, file: string): string => [
    `  ${r} = {`,
    `    database_name = ${join(dir, `${file}.db`)}`,
    `    key_stash_file = ${join(dir, `${file}.stash`)}`,
    `    acl_file = ${join(dir, 'kadm5.acl')}`,
    '    max_life = 10h 0m 0s',
    '    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal',
    '  }',
  ].join('\n');
  await writeFile(kdcConf, [
    '[kdcdefaults]',
    `  kdc_ports = ${port}`,
    `  kdc_tcp_ports = ${port}`,
    '[realms]',
    kdcRealm(REALM, 'poplar'),
    kdcRealm(OTHER_REALM, 'other'),
    '[logging]',
    `  kdc = FILE:${join(dir, 'kdc.log')}`,
    '',
  ].join('\n'));
  await writeFile(join(dir, 'kadm5.acl'), '');
  const toolEnv = { ...process.env, PATH: SBIN, KRB5_CONFIG: krb5Conf, KRB5_KDC_PROFILE: kdcConf };
  const env = (ccache?: string): NodeJS.ProcessEnv => ({
    ...process.env,
    KRB5_CONFIG: krb5Conf,
    KRB5RCACHEDIR: dir,
    ...(ccache === undefined ? {} : { KRB5CCNAME: `FILE:${join(dir, ccache)}` }),
  });
  const admin = (query: string, realm = REALM): Promise<Run> =>
    must(runProcess('kadmin.local', ['-r', realm, '-q', query], { env: toolEnv }), `kadmin.local ${query}`);

  for (const realm of [REALM, OTHER_REALM]) {
    await must(runProcess('kdb5_util', ['-r', realm, 'create', '-s', '-P', MASTER_PASSWORD], { env: toolEnv }), `kdb5_util create ${realm}`);
    // The one-way trust: OTHER.TEST users may get tickets for POPLAR.TEST services.
    await admin(`addprinc -pw ${TRUST_PASSWORD} krbtgt/${REALM}@${OTHER_REALM}`, realm);
  }
  await admin('addprinc -randkey pop/localhost');
  await admin(`ktadd -k ${keytab} pop/localhost`);

  let log = '';
  const child = spawn('krb5kdc', ['-n', '-r', REALM, '-r', OTHER_REALM], { env: toolEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  try {
    await waitForTcp(port, child, () => log);
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    dir,
    port,
    krb5Conf,
    keytab,
    env,
    admin,
    kinit: (principal, password, ccache, args = []) =>
      runProcess('kinit', ['-c', `FILE:${join(dir, ccache)}`, ...args, principal], { env: env(ccache), input: `${password}\n` }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A private OpenLDAP server for the LDAP directory tests (R-X19): Debian's slapd with a
 * slapd.conf in a temp folder, the mdb backend, the schemas core, cosine, inetorgperson and nis
 * from /etc/ldap/schema plus a small `poplarUser` schema (maildrop, quota, master flag), the
 * entries loaded with slapadd before the start, on loopback ports below 32768: ldap:// (StartTLS
 * offered) and ldaps://, both with the test certificate (certs.ts). slapd runs in the foreground
 * with the `stats` log level, so tests can count the binds it served (`binds`). stop() and
 * start() keep the data; close() kills it and removes the folder.
 *
 * Skip a test without slapd with `needProgram(['slapd', 'slapadd'], 'slapd')`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shaCrypt } from '../../src/auth/sha-crypt.js';
import { testCerts } from './certs.js';
import { freeLowPort } from './ports.js';

export const SUFFIX = 'dc=example,dc=org';
export const PEOPLE = `ou=people,${SUFFIX}`;
export const SERVICE_DN = `cn=poplar,ou=services,${SUFFIX}`;
export const SERVICE_PASSWORD = 'service-secret';
const SBIN = ['/usr/sbin', '/sbin'];

export interface LdapUser {
  readonly uid: string;
  readonly password: string;
  /** How userPassword is stored: `{SSHA}` (default) or `{CRYPT}` with SHA-512 crypt (`$6$`). */
  readonly scheme?: 'SSHA' | 'CRYPT';
  /** The userPassword value as given instead (e.g. `{PLAIN}…` for challenge mechanisms). */
  readonly stored?: string;
  readonly mail?: string;
  readonly maildrop?: string;
  readonly quota?: string;
  readonly master?: boolean;
}

export interface Slapd {
  /** ldap://127.0.0.1:PORT (StartTLS offered). */
  readonly url: string;
  /** ldaps://127.0.0.1:PORT, and ldaps://localhost:PORT for the host name check. */
  readonly ldapsUrl: string;
  readonly dir: string;
  /** BIND operations slapd served for `dn` (from its stats log). */
  binds(dn: string): number;
  /** Lines of slapd's stats log containing `text`. */
  count(text: string): number;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** SIGSTOP / SIGCONT: a server that accepts connections (the kernel does) but never answers. */
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

export const userDn = (uid: string): string => `uid=${uid},${PEOPLE}`;

/** `{SSHA}`: base64(SHA-1(password + salt) + salt), as slappasswd makes it. */
export function ssha(password: string): string {
  const salt = randomBytes(8);
  return `{SSHA}${Buffer.concat([createHash('sha1').update(password).update(salt).digest(), salt]).toString('base64')}`;
}

const POPLAR_SCHEMA = `
attributetype ( 1.3.6.1.4.1.99999.1.1 NAME 'poplarMaildrop' EQUALITY caseExactMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.2 NAME 'poplarQuota' EQUALITY caseIgnoreMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.3 NAME 'poplarMaster' EQUALITY booleanMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.7 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.99999.2.1 NAME 'poplarUser' SUP top AUXILIARY
  MAY ( poplarMaildrop $ poplarQuota $ poplarMaster ) )
`;

async function entryOf(u: LdapUser): Promise<string> {
  const password = u.stored !== undefined ? u.stored : u.scheme === 'CRYPT'
    ? `{CRYPT}${await shaCrypt('sha512', Buffer.from(u.password), randomBytes(6).toString('hex'))}`
    : ssha(u.password);
  const lines = [
    `dn: ${userDn(u.uid)}`, 'objectClass: inetOrgPerson', 'objectClass: poplarUser',
    `uid: ${u.uid}`, `cn: ${u.uid}`, `sn: ${u.uid}`, `userPassword: ${password}`,
  ];
  if (u.mail !== undefined) lines.push(`mail: ${u.mail}`);
  if (u.maildrop !== undefined) lines.push(`poplarMaildrop: ${u.maildrop}`);
  if (u.quota !== undefined) lines.push(`poplarQuota: ${u.quota}`);
  if (u.master === true) lines.push('poplarMaster: TRUE');
  return lines.join('\n');
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startSlapd(users: readonly LdapUser[]): Promise<Slapd> {
  const dir = await mkdtemp(join(tmpdir(), 'poplar-slapd-'));
  const certs = await testCerts();
  await mkdir(join(dir, 'db'));
  await writeFile(join(dir, 'poplar.schema'), POPLAR_SCHEMA);
  const conf = [
    ...['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `include /etc/ldap/schema/${s}.schema`),
    `include ${join(dir, 'poplar.schema')}`,
    `pidfile ${join(dir, 'slapd.pid')}`,
    'modulepath /usr/lib/ldap',
    'moduleload back_mdb',
    `TLSCertificateFile ${certs.cert}`,
    `TLSCertificateKeyFile ${certs.key}`,
    'database mdb',
    `suffix "${SUFFIX}"`,
    `rootdn "cn=admin,${SUFFIX}"`,
    `rootpw ${randomBytes(12).toString('hex')}`,
    `directory ${join(dir, 'db')}`,
    'maxsize 10485760',
    // The service account reads userPassword (compare mode); users may only bind with theirs.
    `access to attrs=userPassword by dn.exact="${SERVICE_DN}" read by anonymous auth by * none`,
    'access to * by * read',
    '',
  ].join('\n');
  await writeFile(join(dir, 'slapd.conf'), conf);
  const base = [
    `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example`,
    `dn: ou=people,${SUFFIX}\nobjectClass: organizationalUnit\nou: people`,
    `dn: ou=services,${SUFFIX}\nobjectClass: organizationalUnit\nou: services`,
    `dn: ${SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: poplar\nuserPassword: ${ssha(SERVICE_PASSWORD)}`,
    ...(await Promise.all(users.map(entryOf))),
  ];
  await writeFile(join(dir, 'users.ldif'), base.join('\n\n') + '\n');
  const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:${SBIN.join(':')}` };
  const added = spawnSync('slapadd', ['-f', join(dir, 'slapd.conf'), '-l', join(dir, 'users.ldif')], { env, encoding: 'utf8' });
  if (added.status !== 0) throw new Error(`slapadd failed: ${added.stderr}`);

  let child: ChildProcess | undefined;
  let log = '';
  let ports: { ldap: number; ldaps: number } | undefined;
  const launch = async (): Promise<boolean> => {
    const { ldap, ldaps } = ports!;
    const c = spawn('slapd', ['-f', join(dir, 'slapd.conf'), '-h', `ldap://127.0.0.1:${ldap}/ ldaps://127.0.0.1:${ldaps}/`, '-d', 'stats'],
      { env, stdio: ['ignore', 'ignore', 'pipe'] });
    c.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
    child = c;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (c.exitCode !== null) return false;
      if ((await accepts(ldap)) && (await accepts(ldaps))) return true;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`slapd did not start: ${log.slice(-2000)}`);
  };
  const stop = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (c === undefined || c.exitCode !== null) return;
    c.kill('SIGCONT');
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (c.exitCode === null) c.kill('SIGKILL');
    await exited;
  };
  for (let attempt = 0; ; attempt++) {
    ports = { ldap: await freeLowPort(), ldaps: await freeLowPort() };
    if (await launch()) break;
    if (attempt >= 5) throw new Error(`slapd did not start: ${log.slice(-2000)}`);
  }
  const { ldap, ldaps } = ports;
  return {
    url: `ldap://127.0.0.1:${ldap}`,
    ldapsUrl: `ldaps://127.0.0.1:${ldaps}`,
    dir,
    binds(dn) {
      // stats: `conn=1001 op=0 BIND dn="uid=carol,ou=people,dc=example,dc=org" method=128`
      return log.split('\n').filter((l) => l.includes(` BIND dn="${dn}" method=128`)).length;
    },
    count: (text) => log.split('\n').filter((l) => l.includes(text)).length,
    stop,
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    async start() {
      if (!(await launch())) throw new Error(`slapd did not start again: ${log.slice(-2000)}`);
    },
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

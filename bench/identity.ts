/**
 * `npm run bench:identity [-- options]` (issue 16, R-X19 R-X20): logins/s and CPU per login of
 * the enterprise identity paths beside the passwd-file, in one run. It starts a private OpenLDAP
 * (test/helpers/slapd.ts, slapd logging at its `stats` level) and a private MIT KDC
 * (test/helpers/kdc.ts), then one `poplar serve` per configuration (test/helpers/poplar-process.ts,
 * every server with the same settings but the directory and the login cache), and runs C
 * concurrent clients for D seconds against each, after one untimed login per client:
 *
 *   passwd-file cold / cached   USER/PASS + QUIT, `{SHA512-CRYPT}` (5,000 rounds), auth.cache_ttl 0 / 3600
 *   ldap cold / cached          USER/PASS + QUIT, auth.directory = "ldap", bind mode, ldap:// on loopback
 *   gssapi passwd-file / ldap   AUTH GSSAPI + QUIT, one fresh AP-REQ per login (the `kerberos`
 *                               package's client) from one ticket of bench0@POPLAR.TEST
 *
 * Each client logs in as its own user (bench0…bench{C-1}; GSSAPI: bench0 for all). Every login
 * must answer +OK, or the run stops with exit 1. CPU: the poplar process (every thread, from
 * /proc/PID/stat), slapd and krb5kdc separately, and this process (the clients). Options:
 * --duration 8, --clients 8, --only name,name (e.g. `ldap-cached,passwd-cached`),
 * --profile DIR (the servers run with --cpu-prof into DIR; read with dist/bench/profile-top.js).
 * Prints a table; asserts nothing about speed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shaCrypt } from '../src/auth/sha-crypt.js';
import { REALM, startKdc, type Kdc } from '../test/helpers/kdc.js';
import { startPoplar, type PoplarProcess } from '../test/helpers/poplar-process.js';
import { PEOPLE, SERVICE_DN, SERVICE_PASSWORD, startSlapd, type Slapd } from '../test/helpers/slapd.js';
import { parseArgs } from './args.js';
import { runLoops } from './measure.js';
import { Pop3Client, type Target } from './pop3.js';
import { treeCpuSeconds } from './proc.js';

interface KerberosClient {
  step(challenge: string): Promise<string>;
  unwrap(challenge: string): Promise<string>;
  wrap(challenge: string, options?: { user?: string }): Promise<string>;
}
const kerberos = createRequire(import.meta.url)('kerberos') as {
  initializeClient(service: string, options?: { mechOID?: number }): Promise<KerberosClient>;
  GSS_MECH_OID_KRB5: number;
};

const PASSWORD = 'bench-password';

interface Config {
  readonly name: string;
  readonly what: string;
  readonly directory: 'passwd-file' | 'ldap';
  readonly cache: boolean;
  readonly gssapi: boolean;
}

const CONFIGS: readonly Config[] = [
  { name: 'passwd-cold', what: 'passwd-file, USER/PASS, cache off', directory: 'passwd-file', cache: false, gssapi: false },
  { name: 'passwd-cached', what: 'passwd-file, USER/PASS, cache on', directory: 'passwd-file', cache: true, gssapi: false },
  { name: 'ldap-cold', what: 'LDAP bind, USER/PASS, cache off', directory: 'ldap', cache: false, gssapi: false },
  { name: 'ldap-cached', what: 'LDAP bind, USER/PASS, cache on', directory: 'ldap', cache: true, gssapi: false },
  { name: 'gssapi-passwd', what: 'GSSAPI, passwd-file directory', directory: 'passwd-file', cache: true, gssapi: true },
  { name: 'gssapi-ldap', what: 'GSSAPI, LDAP directory', directory: 'ldap', cache: true, gssapi: true },
];

interface Row {
  readonly config: Config;
  readonly logins: number;
  readonly wallS: number;
  readonly serverMs: number;
  /** NaN when the process was not found. */
  readonly slapdMs: number;
  readonly kdcMs: number;
  readonly clientMs: number;
}

/** The pid of this process's child running `comm` (slapd, krb5kdc), from /proc. */
function childPid(comm: string): number | undefined {
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    try {
      const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const c = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
      const ppid = Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]);
      if (c === comm && ppid === process.pid) return pid;
    } catch {
      // exited meanwhile
    }
  }
  return undefined;
}

const cpuMs = (pid: number | undefined): number => (pid === undefined ? NaN : treeCpuSeconds(pid) * 1000);

async function passwordLogin(target: Target, user: string): Promise<void> {
  const p = await Pop3Client.open(target);
  try {
    await p.login(user, PASSWORD);
    await p.quit();
  } finally {
    p.destroy();
  }
}

/** RFC 4752 as the client: AP-REQ, the AP-REP (mutual authentication), the layer offer, "no layer". */
async function gssapiLogin(target: Target): Promise<void> {
  const client = await kerberos.initializeClient('pop@localhost', { mechOID: kerberos.GSS_MECH_OID_KRB5 });
  const token = await client.step('');
  const p = await Pop3Client.open(target);
  const expect = (reply: string, what: string): string => {
    if (!reply.startsWith('+ ') && reply !== '+') throw new Error(`AUTH GSSAPI ${what}: server said ${reply}`);
    return reply.slice(2);
  };
  try {
    expect(await p.line('AUTH GSSAPI'), 'start');
    await client.step(expect(await p.line(token), 'AP-REQ'));
    const offer = await client.unwrap(expect(await p.line(''), 'AP-REP'));
    const done = await p.line(await client.wrap(offer));
    if (!done.startsWith('+OK')) throw new Error(`AUTH GSSAPI: server said ${done}`);
    await p.quit();
  } finally {
    p.destroy();
  }
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const duration = a.num('duration', 8);
  const clients = a.num('clients', 8);
  const only = a.has('only') ? new Set(a.str('only', '').split(',')) : undefined;
  const profileDir = a.has('profile') ? a.str('profile', '') : undefined;
  const configs = CONFIGS.filter((c) => only === undefined || only.has(c.name));
  if (configs.length === 0) throw new Error(`--only: none of ${CONFIGS.map((c) => c.name).join(', ')}`);
  const users = Array.from({ length: clients }, (_, i) => `bench${i}`);

  const work = await mkdtemp(join(tmpdir(), 'poplar-bench-identity-'));
  const servers: PoplarProcess[] = [];
  let slapd: Slapd | undefined;
  let kdc: Kdc | undefined;
  try {
    slapd = await startSlapd(users.map((uid) => ({ uid, password: PASSWORD })));
    kdc = await startKdc();
    await kdc.admin(`addprinc -pw ${PASSWORD} bench0`);
    const k = await kdc.kinit('bench0', PASSWORD, 'cc-bench0');
    if (k.code !== 0) throw new Error(`kinit: ${k.stderr}`);
    process.env['KRB5_CONFIG'] = kdc.krb5Conf;
    process.env['KRB5CCNAME'] = `FILE:${join(kdc.dir, 'cc-bench0')}`;
    const slapdPid = childPid('slapd');
    const kdcPid = childPid('krb5kdc');
    if (slapdPid === undefined || kdcPid === undefined) process.stderr.write('bench:identity: slapd or krb5kdc not found in /proc: its CPU is n/a\n');
    const passwordFile = join(work, 'ldap-password');
    await writeFile(passwordFile, `${SERVICE_PASSWORD}\n`, { mode: 0o600 });
    const hash = `{SHA512-CRYPT}${await shaCrypt('sha512', Buffer.from(PASSWORD), 'benchidentity01')}`;

    const rows: Row[] = [];
    for (const config of configs) {
      const dataDir = await mkdtemp(join(work, `${config.name}-`));
      // The users file: the bench users for passwd-file; empty for LDAP (they are in the directory).
      await writeFile(join(dataDir, 'users'), config.directory === 'ldap' ? '' : users.map((u) => `${u}:${hash}\n`).join(''), { mode: 0o600 });
      const ldap = config.directory !== 'ldap' ? [] : [
        'auth.directory="ldap"', `ldap.url="${slapd.url}"`, `ldap.base_dn="${PEOPLE}"`,
        `ldap.bind_dn="${SERVICE_DN}"`, `ldap.bind_password_file="${passwordFile}"`,
      ];
      const server = await startPoplar({
        dataDir,
        users: {},
        env: kdc.env(),
        nodeArgs: profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${config.name}.cpuprofile`],
        overrides: [
          ...ldap,
          'pop3.hostname=localhost',
          'auth.mechanisms=["GSSAPI", "PLAIN"]',
          `auth.gssapi_keytab=${kdc.keytab}`,
          `auth.gssapi_realms=["${REALM}"]`,
          `auth.cache_ttl=${config.cache ? 3600 : 0}`,
          'pop3.max_connections=20000',
          'pop3.max_connections_per_ip=20000',
          'pop3.max_connections_per_user=20000',
        ],
      });
      servers.push(server);
      const target: Target = { host: '127.0.0.1', port: server.pop3Port };
      const once = (w: number): Promise<void> => (config.gssapi ? gssapiLogin(target) : passwordLogin(target, users[w]!));
      await Promise.all(users.map((_, w) => once(w))); // untimed: JIT, pools, the cache filled
      const s0 = cpuMs(server.child.pid);
      const l0 = cpuMs(slapdPid);
      const k0 = cpuMs(kdcPid);
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const logins = await runLoops(clients, duration, (w) => once(w));
      const wallS = (performance.now() - t0) / 1000;
      const c = process.cpuUsage(c0);
      rows.push({
        config,
        logins,
        wallS,
        serverMs: (cpuMs(server.child.pid) - s0) / logins,
        slapdMs: (cpuMs(slapdPid) - l0) / logins,
        kdcMs: (cpuMs(kdcPid) - k0) / logins,
        clientMs: (c.user + c.system) / 1000 / logins,
      });
      process.stderr.write(`bench:identity: ${config.name} done (${logins} logins)\n`);
      await server.stop(); // SIGTERM: a --cpu-prof profile is written at exit
      await server.cleanup();
    }
    print(rows, clients, duration);
  } finally {
    for (const s of servers) await s.cleanup();
    await kdc?.stop();
    await slapd?.close();
    await rm(work, { recursive: true, force: true });
  }
}

function print(rows: readonly Row[], clients: number, duration: number): void {
  const f = (v: number, d = 2): string => (Number.isNaN(v) ? 'n/a' : v.toFixed(d));
  const base = (r: Row): Row | undefined =>
    rows.find((b) => b.config.directory === 'passwd-file' && !b.config.gssapi && b.config.cache === r.config.cache);
  console.log(`bench:identity: ${clients} clients, ${duration} s per configuration; CPU in ms per login (/proc clock ticks)`);
  console.log('');
  console.log('| configuration | logins/s | poplar CPU | slapd CPU | KDC CPU | client CPU | poplar CPU vs passwd-file |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    const b = base(r);
    const ratio = b === undefined || b === r ? '' : `${f(r.serverMs / b.serverMs)}× (${b.config.name})`;
    console.log(`| ${r.config.name}: ${r.config.what} | ${f(r.logins / r.wallS, 0)} | ${f(r.serverMs)} | ${f(r.slapdMs)} | ${f(r.kdcMs)} | ${f(r.clientMs)} | ${ratio} |`);
  }
  const cached = rows.find((r) => r.config.name === 'ldap-cached');
  const file = rows.find((r) => r.config.name === 'passwd-cached');
  if (cached !== undefined && file !== undefined) {
    const ratio = cached.serverMs / file.serverMs;
    console.log('');
    console.log(`issue 16 target: cached LDAP logins within 1.2× of passwd-file's poplar CPU per login: ${f(ratio)}× (${ratio <= 1.2 ? 'met' : 'not met'}); ` +
      `with slapd's CPU: ${f((cached.serverMs + cached.slapdMs) / file.serverMs)}×`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:identity: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

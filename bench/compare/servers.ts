/**
 * The two servers of `npm run bench:compare`, each started as a child process in its own folder
 * under the work directory, listening on 127.0.0.1 only, reading the same passwd-file (one
 * password scheme for both) and the same self-signed certificate.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Ports {
  readonly pop3: number;
  readonly pop3s: number;
  readonly lmtp: number;
}

export interface Server {
  /** `poplar-pg`: poplar on PostgreSQL (bench/compare/postgres.ts); `poplar-pg2`: two such nodes behind HAProxy. */
  readonly name: 'poplar' | 'dovecot' | 'poplar-pg' | 'poplar-pg2';
  readonly pid: number;
  readonly ports: Ports;
  /** Maildir template (`%u`) the bench seeds. */
  readonly maildir: string;
  /** `uid:gid` the seeded files must belong to, if not the bench's own. */
  readonly chown: string | undefined;
  /** Scenario arguments the server needs beyond the common ones (poplar-pg: the seeding hook, the database's pid). */
  readonly scenarioArgs?: readonly string[];
  stop(): Promise<void>;
}

/** The passwd-file both servers read: every user with `hash` (a `{SCHEME}…` string). */
export function writeUsers(path: string, users: readonly string[], hash: string): void {
  writeFileSync(path, users.map((u) => `${u}:${hash}\n`).join(''), { mode: 0o644 });
}

/** A `{SCHEME}` hash of the password made by Dovecot's own `doveadm pw`. */
export function hashWithDoveadm(scheme: string, password: string): string {
  return execFileSync('doveadm', ['pw', '-s', scheme, '-p', password], { encoding: 'utf8' }).trim();
}

/** A self-signed RSA-2048 certificate for CN=localhost, used by both servers. */
export function makeCert(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  chmodSync(key, 0o600);
  return { cert, key };
}

/** Resolves once something accepts TCP connections on the port; false after `ms`. */
export async function waitForPort(port: number, ms = 15_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return true;
    await sleep(100);
  }
  return false;
}

function stopper(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const late = await Promise.race([exited.then(() => false), sleep(20_000).then(() => true)]);
    if (late) child.kill('SIGKILL');
  };
}

export interface PoplarOptions {
  readonly root: string;
  readonly work: string;
  readonly ports: Ports;
  readonly usersFile: string;
  readonly cert: { cert: string; key: string };
  /**
   * Both servers' verified-login caches on (poplar's default auth.cache_ttl = 3600; Dovecot
   * auth_cache_size = 10M, auth_cache_ttl = 1 hour) or both off (poplar 0; Dovecot's default).
   */
  readonly authCache: boolean;
  /** Extra node flags, e.g. --cpu-prof. */
  readonly nodeArgs: readonly string[];
  /** The server's name and folder under the work directory (default `poplar`). */
  readonly name?: 'poplar' | 'poplar-pg';
  readonly folder?: string;
  /** More `-o key=value` settings (after the common ones), e.g. storage.backend = "postgres". */
  readonly settings?: Readonly<Record<string, string>>;
}

export async function startPoplar(o: PoplarOptions): Promise<Server> {
  const data = join(o.work, o.folder ?? 'poplar');
  mkdirSync(join(data, 'mail'), { recursive: true });
  const set = (k: string, v: string): string[] => ['-o', `${k}=${v}`];
  const log = openSync(join(data, 'poplar.log'), 'a');
  const child = spawn(process.execPath, [
    ...o.nodeArgs,
    join(o.root, 'dist/src/cli/main.js'), 'serve', '--data', data,
    ...set('pop3.listen', `127.0.0.1:${o.ports.pop3}`),
    ...set('pop3.tls_listen', `127.0.0.1:${o.ports.pop3s}`),
    ...set('lmtp.listen', `127.0.0.1:${o.ports.lmtp}`),
    ...set('tls.cert', o.cert.cert),
    ...set('tls.key', o.cert.key),
    ...set('auth.users_file', o.usersFile),
    ...set('server.first_run_user', ''),
    ...set('auth.cache_ttl', o.authCache ? '3600' : '0'),
    // Connection caps raised as Dovecot's are (mail_max_userip_connections, process limits).
    ...set('pop3.max_connections', '20000'),
    ...set('pop3.max_connections_per_ip', '20000'),
    ...set('pop3.max_connections_per_user', '20000'),
    ...Object.entries(o.settings ?? {}).flatMap(([k, v]) => set(k, v)),
  ], { cwd: data, stdio: ['ignore', log, log] });
  if (!(await waitForPort(o.ports.pop3))) throw new Error(`poplar did not start: see ${join(data, 'poplar.log')}`);
  return { name: o.name ?? 'poplar', pid: child.pid!, ports: o.ports, maildir: join(data, 'mail/%u'), chown: undefined, stop: stopper(child, 'SIGINT') };
}

/**
 * Dovecot's config: POP3, POP3S and LMTP on loopback, sized for 10,000 idle POP3 sessions.
 * `extra` lines go last: a setting named again there replaces the one above (doveconf keeps the last).
 */
function dovecotConf(dir: string, ports: Ports, usersFile: string, cert: { cert: string; key: string }, authCache: boolean, extra: string): string {
  return `# written by bench/compare (poplar); loopback only
protocols = pop3 lmtp
listen = 127.0.0.1
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
info_log_path = ${dir}/dovecot.log
ssl = yes
ssl_cert = <${cert.cert}
ssl_key = <${cert.key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Ln
${authCache ? 'auth_cache_size = 10M\nauth_cache_ttl = 1 hour\n' : ''}mail_location = maildir:${dir}/mail/%u
mail_max_userip_connections = 20000
pop3_uidl_format = %08Xu%08Xv
default_login_user = dovenull
default_internal_user = dovecot
default_process_limit = 12000
default_client_limit = 12000
passdb {
  driver = passwd-file
  args = ${usersFile}
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=${dir}/home/%u allow_all_users=yes
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = ${ports.pop3}
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = ${ports.pop3s}
    ssl = yes
  }
  service_count = 0
  process_min_avail = 2
  client_limit = 12000
}
service pop3 {
  process_limit = 12000
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${ports.lmtp}
  }
}
service anvil {
  client_limit = 13000
}
service auth {
  client_limit = 25000
}
${extra}
`;
}

/** Options of startDovecot; `dir` (default `<work>/dovecot`) and `extra` config lines are for tests. */
export interface DovecotOptions extends Omit<PoplarOptions, 'root' | 'nodeArgs'> {
  readonly dir?: string;
  readonly extra?: string;
}

/** Debian installs the master as /usr/sbin/dovecot, which is not on every user's PATH. */
const DOVECOT = existsSync('/usr/sbin/dovecot') ? '/usr/sbin/dovecot' : 'dovecot';

export async function startDovecot(o: DovecotOptions): Promise<Server> {
  const dir = o.dir ?? join(o.work, 'dovecot');
  for (const d of ['run', 'state', 'mail', 'home']) mkdirSync(join(dir, d), { recursive: true });
  for (const d of ['mail', 'home']) chownSync(join(dir, d), 65534, 65534); // the userdb's uid=nobody
  const conf = join(dir, 'dovecot.conf');
  writeFileSync(conf, dovecotConf(dir, o.ports, o.usersFile, o.cert, o.authCache, o.extra ?? ''));
  const log = openSync(join(dir, 'stdout.log'), 'a');
  const child = spawn(DOVECOT, ['-F', '-c', conf], { stdio: ['ignore', log, log] });
  if (!(await waitForPort(o.ports.pop3))) throw new Error(`dovecot did not start: see ${dir}/dovecot.log`);
  return { name: 'dovecot', pid: child.pid!, ports: o.ports, maildir: join(dir, 'mail/%u'), chown: '65534:65534', stop: stopper(child) };
}

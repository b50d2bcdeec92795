/**
 * poplar on PostgreSQL for `npm run bench:compare` (issue 15, R-X17): `poplar-pg`, one node on the
 * bench's database (postgres.ts), and with `--nodes 2` `poplar-pg2`, two nodes on the same
 * database behind a real HAProxy (round robin, PROXY v2 to the nodes' POP3 and POP3S listeners).
 * Users are in the database (`auth.directory = "postgres"`), mail too (`storage.backend =
 * "postgres"`); the scenarios seed Maildirs under `<folder>/seed/` and hand them to poplar with
 * the seeding hook (pg-seed.ts), so "first sight" is the first login after the import.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startHaproxy } from '../../test/helpers/haproxy.js';
import type { BenchPostgres } from './postgres.js';
import { startPoplar, waitForPort, type PoplarOptions, type Ports, type Server } from './servers.js';

/** The settings that put a poplar node on the bench's database. */
function pgSettings(pg: BenchPostgres): Record<string, string> {
  return { 'storage.backend': 'postgres', 'auth.directory': 'postgres', 'postgres.url': pg.url };
}

/** What every scenario against a PostgreSQL-backed poplar needs: the seeding hook, the database's pid, the POP3 port (deliver checks through it). */
function scenarioArgs(root: string, pg: BenchPostgres, pop3: number): string[] {
  return ['--seed-hook', `${process.execPath} ${join(root, 'dist/bench/compare/pg-seed.js')} --url ${pg.url}`, '--db-pid', String(pg.pid), '--pop3-port', String(pop3)];
}

/** `poplar db migrate` on the bench's database: the schema as an operator creates it. */
export function migrateDatabase(root: string, pg: BenchPostgres): string {
  return execFileSync(process.execPath, [join(root, 'dist/src/cli/main.js'), 'db', 'migrate', '-o', `postgres.url=${pg.url}`], { encoding: 'utf8' }).trim();
}

export async function startPoplarPg(o: Omit<PoplarOptions, 'name' | 'folder' | 'settings'>, pg: BenchPostgres): Promise<Server> {
  const s = await startPoplar({ ...o, name: 'poplar-pg', folder: 'poplar-pg', settings: pgSettings(pg) });
  return { ...s, maildir: join(o.work, 'poplar-pg/seed/%u'), scenarioArgs: scenarioArgs(o.root, pg, s.ports.pop3) };
}

/**
 * Two nodes behind HAProxy. Both nodes are children of one `sh` (its own process group), so the
 * scenarios' server CPU and memory are the two nodes' together (HAProxy's are not counted: it is
 * the provider's load balancer, not poplar).
 */
export async function startPoplarPg2(o: Omit<PoplarOptions, 'name' | 'folder' | 'settings' | 'ports'>, pg: BenchPostgres, nodePorts: readonly Ports[]): Promise<Server> {
  const dir = join(o.work, 'poplar-pg2');
  const node = (i: number, p: Ports): string => {
    const data = join(dir, `node${i + 1}`);
    mkdirSync(data, { recursive: true });
    const settings: Record<string, string> = {
      'pop3.listen': `127.0.0.1:${p.pop3}`,
      'pop3.tls_listen': `127.0.0.1:${p.pop3s}`,
      'lmtp.listen': `127.0.0.1:${p.lmtp}`,
      'tls.cert': o.cert.cert,
      'tls.key': o.cert.key,
      'auth.users_file': o.usersFile,
      'server.first_run_user': '',
      'auth.cache_ttl': o.authCache ? '3600' : '0',
      'pop3.max_connections': '20000',
      'pop3.max_connections_per_ip': '20000',
      'pop3.max_connections_per_user': '20000',
      'pop3.proxy_networks': '127.0.0.1/32',
      ...pgSettings(pg),
    };
    const q = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`;
    const args = [...o.nodeArgs, join(o.root, 'dist/src/cli/main.js'), 'serve', '--data', data, ...Object.entries(settings).flatMap(([k, v]) => ['-o', `${k}=${v}`])];
    return `(cd ${q(data)} && exec ${q(process.execPath)} ${args.map(q).join(' ')} >>${q(join(data, 'poplar.log'))} 2>&1) &`;
  };
  mkdirSync(dir, { recursive: true });
  const script = `${nodePorts.map((p, i) => node(i, p)).join('\n')}\nwait\n`;
  const log = openSync(join(dir, 'sh.log'), 'a');
  const child = spawn('sh', ['-c', script], { detached: true, stdio: ['ignore', log, log] });
  const group = child.pid!;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killGroup = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-group, sig);
    } catch {
      // already gone
    }
  };
  const groupAlive = (): boolean => {
    try {
      process.kill(-group, 0);
      return true;
    } catch {
      return false;
    }
  };
  let haproxy: Awaited<ReturnType<typeof startHaproxy>> | undefined;
  try {
    for (const p of nodePorts) if (!(await waitForPort(p.pop3))) throw new Error(`a poplar-pg2 node did not start: see ${dir}/node*/poplar.log`);
    haproxy = await startHaproxy([
      { name: 'pop3', backends: nodePorts.map((p) => p.pop3) },
      { name: 'pop3s', backends: nodePorts.map((p) => p.pop3s) },
      { name: 'lmtp', backends: nodePorts.map((p) => p.lmtp), sendProxy: false },
    ]);
  } catch (err) {
    killGroup('SIGKILL');
    throw err;
  }
  const ports: Ports = { pop3: haproxy.ports.pop3!, pop3s: haproxy.ports.pop3s!, lmtp: haproxy.ports.lmtp! };
  const h = haproxy;
  return {
    name: 'poplar-pg2',
    pid: group,
    ports,
    maildir: join(dir, 'seed/%u'),
    chown: undefined,
    scenarioArgs: scenarioArgs(o.root, pg, ports.pop3),
    async stop() {
      await h.stop();
      killGroup('SIGTERM');
      // Until no process of the group is left (the nodes outlive the sh that waited for them).
      for (let i = 0; i < 200 && groupAlive(); i++) await sleep(100);
      if (groupAlive()) killGroup('SIGKILL');
      await exited;
    },
  };
}

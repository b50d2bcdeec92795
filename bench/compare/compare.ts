/**
 * `npm run bench:compare`: starts a private Dovecot and poplar side by side (own folders under
 * --work, loopback only, the same passwd-file, password scheme and certificate), runs every
 * scenario against each in turn — each run a separate `bench/main.js` process, so the bench
 * client's CPU is its own — and writes bench/results/compare.{md,svg,json}.
 *   With PostgreSQL installed (or `--servers poplar,poplar-pg,dovecot`), poplar on PostgreSQL
 * (`poplar-pg`, pg-servers.ts) runs too, on a private PostgreSQL the bench starts (postgres.ts),
 * with the same users and password hash in the database; `--nodes 2` adds two such nodes behind
 * HAProxy (`poplar-pg2`). The report then has a column per server and issue 15's targets.
 */
import { execFileSync, spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from '../args.js';
import type { Metric, Result } from '../measure.js';
import { costTable, markdownTable, markdownTable3, rows, rows3, svgChart, type Outcome } from './report.js';
import { hashWithDoveadm, makeCert, startDovecot, startPoplar, waitForPort, writeUsers, type Server } from './servers.js';
import { postgresInstalled, startBenchPostgres, type BenchPostgres } from './postgres.js';
import { migrateDatabase, startPoplarPg, startPoplarPg2 } from './pg-servers.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const a = parseArgs(process.argv.slice(2));
const work = resolve(a.str('work', '/tmp/poplar-bench'));
const out = resolve(root, a.str('out', 'bench/results'));
const scheme = a.str('scheme', 'SHA512-CRYPT');
const password = 'bench-password';
/** Both servers' login caches on (default) or off: `--auth-cache off`. */
const authCache = a.str('auth-cache', 'on') !== 'off';
const duration = a.str('duration', '10');
const base = a.num('port-base', 31000);
const WORK_MARKER = 'poplar-bench-work';

/** name -> scenario arguments; ports are filled in per server. */
const SCENARIOS: { key: string; args: string[]; port: 'pop3' | 'pop3s' | 'lmtp' }[] = [
  // idle first: its memory per session is a PSS difference, which garbage left on poplar's heap
  // by earlier scenarios would shrink (measured: PSS 216 MiB before instead of ~40 on a fresh start)
  { key: 'idle', args: ['idle', '--sessions', a.str('sessions', '10000')], port: 'pop3' },
  { key: 'login', args: ['login', '--clients', '16'], port: 'pop3' },
  { key: 'login-tls', args: ['login', '--clients', '16', '--tls'], port: 'pop3s' },
  { key: 'retr-100k', args: ['retr', '--size', '102400'], port: 'pop3' },
  { key: 'retr-5m', args: ['retr', '--size', '5242880'], port: 'pop3' },
  { key: 'bigbox', args: ['bigbox', '--messages', a.str('bigbox-messages', '50000')], port: 'pop3' },
  { key: 'deliver', args: ['deliver', '--clients', '8'], port: 'lmtp' },
];
const which = a.str('servers', postgresInstalled() ? 'poplar,poplar-pg,dovecot' : 'poplar,dovecot').split(',');
const nodes = a.num('nodes', 1);
/** The scenarios issue 15 measures on PostgreSQL (idle is not among them). */
const PG_SCENARIOS = new Set(['login', 'login-tls', 'retr-100k', 'retr-5m', 'bigbox', 'deliver']);
const isPg = (s: Server): boolean => s.name === 'poplar-pg' || s.name === 'poplar-pg2';
// Below 32768 (outside the ephemeral range): the database, poplar-pg, and poplar-pg2's two nodes.
const pgPort = a.num('pg-port', base - 568);
const pgPorts = (k: number): { pop3: number; pop3s: number; lmtp: number } => ({ pop3: base - 1000 * k + 110, pop3s: base - 1000 * k + 995, lmtp: base - 1000 * k + 24 });
const only = a.has('only') ? a.str('only', '').split(',') : SCENARIOS.map((s) => s.key);

const USERS = [
  ...Array.from({ length: 16 }, (_, i) => `login${i}`),
  ...['100kb', '5mb'].flatMap((s) => Array.from({ length: 4 }, (_, i) => `retr${s}-u${i}`)),
  'bigbox',
  ...Array.from({ length: 100 }, (_, i) => `idle${i}`),
  ...Array.from({ length: 10 }, (_, i) => `deliver${i}`),
];

function prepareWork(): void {
  if (existsSync(work)) {
    if (!existsSync(join(work, WORK_MARKER))) throw new Error(`${work} exists and was not made by bench:compare`);
    rmSync(work, { recursive: true, force: true });
  }
  mkdirSync(work, { recursive: true });
  chmodSync(work, 0o755); // Dovecot's mail processes run as nobody and must reach their folders
  writeFileSync(join(work, WORK_MARKER), '');
}

/** Runs one scenario in its own process; resolves with its JSON result or the reason it failed. */
function runScenario(argv: string[], timeoutMs: number): Promise<Outcome> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [join(root, 'dist/bench/main.js'), ...argv, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const json = stdout.trim().split('\n').pop() ?? '';
      if (code === 0 && json.startsWith('{')) {
        process.stdout.write(stdout.slice(0, stdout.lastIndexOf('\n{')) + '\n');
        done({ result: JSON.parse(json) as Result });
      } else done({ error: (stderr.trim() || `exit ${code}`).split('\n')[0]!.slice(0, 200) });
    });
  });
}

function machine(): string {
  const model = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  const dovecot = execFileSync('dovecot', ['--version'], { encoding: 'utf8' }).trim();
  const kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  const memGiB = Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 2 ** 20;
  return `${cpus().length} × ${model}, ${memGiB.toFixed(0)} GiB, Linux ${kernel}; Node ${process.version}; Dovecot ${dovecot}`;
}

/** Dovecot must start as root (it drops to nobody/dovenull itself) and be installed. */
function checkHost(): void {
  if (process.getuid?.() !== 0) throw new Error('run as root: Dovecot is started as root and the seeded mail is chowned to nobody');
  try {
    execFileSync('dovecot', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error('Dovecot not found: apt-get install dovecot-pop3d dovecot-lmtpd (its system service need not run)');
  }
}

async function main(): Promise<void> {
  checkHost();
  prepareWork();
  const cert = makeCert(work);
  const usersFile = join(work, 'users');
  writeUsers(usersFile, USERS, hashWithDoveadm(scheme, password));
  const nodeArgs = a.str('poplar-node-args', '').split(' ').filter((s) => s !== '');
  const servers: Server[] = [];
  let pg: BenchPostgres | undefined;
  try {
    if (which.includes('poplar-pg')) {
      pg = await startBenchPostgres(work, pgPort);
      process.stdout.write(`PostgreSQL on 127.0.0.1:${pg.port}: ${migrateDatabase(root, pg)}\n`);
      await pg.addUsers(USERS, hashWithDoveadm(scheme, password));
    }
    if (which.includes('poplar')) servers.push(await startPoplar({ root, work, usersFile, cert, nodeArgs, authCache, ports: { pop3: base + 110, pop3s: base + 995, lmtp: base + 24 } }));
    // `--servers poplar` (or dovecot): one side only, for quick before/after runs while profiling
    if (pg !== undefined) {
      const common = { root, work, usersFile, cert, nodeArgs, authCache };
      servers.push(await startPoplarPg({ ...common, ports: pgPorts(1) }, pg));
      if (nodes === 2) servers.push(await startPoplarPg2(common, pg, [pgPorts(2), pgPorts(3)]));
      else if (nodes !== 1) throw new Error('--nodes: 1 or 2');
    }
    if (which.includes('dovecot')) servers.push(await startDovecot({ work, usersFile, cert, authCache, ports: { pop3: base + 1110, pop3s: base + 1995, lmtp: base + 1024 } }));
    const runs: { server: string; scenario: string; outcome: Outcome }[] = [];
    for (const sc of SCENARIOS.filter((s) => only.includes(s.key))) {
      for (const s of servers) {
        if (isPg(s) && !PG_SCENARIOS.has(sc.key)) continue;
        const port = s.ports[sc.port];
        if (sc.port !== 'pop3' && !(await waitForPort(port, 1000))) {
          runs.push({ server: s.name, scenario: sc.key, outcome: { error: `${s.name} has no ${sc.port.toUpperCase()} listener` } });
          continue;
        }
        process.stdout.write(`--- ${sc.key} against ${s.name}\n`);
        const argv = [...sc.args, '--port', String(port), '--duration', duration, '--password', password,
          '--server-pid', String(s.pid), '--maildir', s.maildir, ...(s.chown ? ['--chown', s.chown] : []), ...(s.scenarioArgs ?? [])];
        const sizeBefore = pg !== undefined && isPg(s) ? await pg.databaseSize() : 0;
        const outcome = await runScenario(argv, isPg(s) ? 1_800_000 : 600_000); // poplar-pg: the 50k import too
        if (pg !== undefined && isPg(s) && 'result' in outcome) {
          outcome.result.notes.push(`database connections from poplar after the run: ${await pg.poplarConnections()} (pool idle timeout 60 s)`);
        }
        if (sc.key === 'bigbox' && pg !== undefined && 'result' in outcome) {
          outcome.result.metrics.push(diskPerMessage(s, isPg(s) ? (await pg.databaseSize()) - sizeBefore : undefined));
        }
        if ('error' in outcome) process.stdout.write(`    failed: ${outcome.error}\n`);
        runs.push({ server: s.name, scenario: sc.key, outcome });
        await sleep(2000); // let the server settle (Dovecot's session processes exit)
      }
    }
    const pick = (name: string): Outcome[] => runs.filter((r) => r.server === name).map((r) => r.outcome);
    const table = rows(pick('poplar'), pick('dovecot'));
    const three = pg === undefined ? undefined : markdownTable3(rows3(pick('poplar'), pick('poplar-pg'), pick('dovecot'), pick('poplar-pg2')), nodes === 2);
    const when = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const title = `poplar vs Dovecot, ${when}`;
    const pgText = pg === undefined ? [] : [
      '## poplar on PostgreSQL (issue 15)',
      '',
      `poplar-pg: storage.backend = "postgres", auth.directory = "postgres" (the same users and \`{${scheme}}\` hash, in the database), on a private PostgreSQL (${Object.entries(pg.settings).filter(([k]) => ['fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers'].includes(k)).map(([k, v]) => `${k} = ${v}`).join(', ')}); mail seeded from the scenario's Maildirs as the rows deliveries would write, in bulk (bench/compare/pg-seed.ts), so first sight is the first login after the import.${nodes === 2 ? ' poplar-pg 2 nodes: two such nodes on the same database behind HAProxy (round robin, PROXY v2); server CPU is both nodes\'.' : ''} "database CPU" is the PostgreSQL process tree's; "bigbox bytes on disk per message": pg_database_size growth over the bigbox run (poplar-pg) or the allocated size of the bigbox Maildir with the server's index files (poplar, Dovecot), divided by the messages.`,
      '',
      three!,
      '',
    ];
    mkdirSync(out, { recursive: true });
    const md = [
      `# ${title}`,
      '',
      `Machine: ${machine()}.`,
      `Both servers: loopback, the same passwd-file (\`{${scheme}}\`), the same RSA-2048 self-signed certificate, Maildirs seeded with the same bytes, login caches ${authCache ? 'on in both (poplar auth.cache_ttl = 3600; Dovecot auth_cache_size = 10M, auth_cache_ttl = 1 hour)' : 'off in both'}. Duration ${duration} s per load run; \`npm run bench:compare\`.`,
      '',
      markdownTable(table),
      '',
      '![ratios](compare.svg)',
      '',
      ...pgText,
      '## Cost of each run',
      '',
      costTable(runs),
      '',
    ].join('\n');
    writeFileSync(join(out, 'compare.md'), md);
    writeFileSync(join(out, 'compare.svg'), svgChart(table, title));
    writeFileSync(join(out, 'compare.json'), JSON.stringify({ when, machine: machine(), scheme, authCache, runs }, null, 1) + '\n');
    process.stdout.write(`\n${markdownTable(table)}\n${three === undefined ? '' : `\n${three}\n`}\nwritten: ${join(out, 'compare.md')}, compare.svg, compare.json\n`);
  } finally {
    for (const s of servers) await s.stop();
    await pg?.stop();
  }
}

/** Bytes on disk per bigbox message: the database's growth (poplar-pg), else the Maildir's allocated size. */
function diskPerMessage(s: Server, dbGrowth: number | undefined): Metric {
  const n = a.num('bigbox-messages', 50000);
  const bytes = dbGrowth ?? Number(execFileSync('du', ['-s', '-B1', s.maildir.replaceAll('%u', 'bigbox')], { encoding: 'utf8' }).split('\t')[0]);
  return { name: 'bigbox bytes on disk per message', value: bytes / n, unit: 'B', better: 'lower' };
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:compare: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

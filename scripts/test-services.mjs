// Services that scripts/run-tests.mjs starts once for a whole test run, and the run's file order.
//
// PostgreSQL: one cluster (initdb + pg_ctl, test/helpers/postgres.ts) instead of one per test file;
// its URL goes to the test processes as POPLAR_TEST_PG_URL, and each file's `startPostgres()` then
// creates its own databases in it (tests stay isolated: one database per test). Files that kill or
// restart their server ask for their own cluster. The cluster is stopped when the run ends, fails,
// or is interrupted (SIGINT, SIGTERM, SIGHUP); pg_ctl starts the postmaster in its own session, so
// a terminal's Ctrl-C reaches the runner, not the postmaster.
//
// Order: node --test starts files in the order given. The files that took longest in the last run
// (dist/.test-times.json, written by scripts/file-times.mjs) start first, so the run does not end
// waiting on one long file started last; files not timed yet are weighed by the seed list below.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where file-times.mjs records each file's duration (dist/ is build output, never committed). */
export const TIMES_FILE = join('dist', '.test-times.json');

/** Files measured slowest (issue 13); only used while dist/.test-times.json does not exist yet. */
const SEED_SLOW = ['ops/npm-pack', 'ops/workers', 'cli/postgres-directory', 'e2e/ldap', 'ops/reload', 'ops/crash-safety',
  'delivery/postfix', 'delivery/lmtp', 'cli/concurrent-edits', 'postgres/directory-nodes', 'cluster/failover', 'e2e/gssapi'];

function lastTimes() {
  try {
    return JSON.parse(readFileSync(TIMES_FILE, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * `files` with the slowest first, the rest in their order. A file's weight is its time in the last
 * run that ran it; a file never timed yet that is on the seed list counts as 10-120 s by its place.
 */
export function longestFirst(files) {
  const times = lastTimes() ?? {};
  const key = (f) => {
    if (typeof times[f] === 'number') return times[f];
    const i = SEED_SLOW.findIndex((s) => f.endsWith(`/${s}.test.js`));
    return i < 0 ? 0 : (SEED_SLOW.length - i) * 10_000;
  };
  return files.map((f, i) => ({ f, i, t: key(f) })).sort((a, b) => b.t - a.t || a.i - b.i).map((x) => x.f);
}

/** Whether a compiled test file starts PostgreSQL through test/helpers/postgres.ts. */
function usesPostgres(file) {
  const text = readFileSync(file, 'utf8');
  return /startPostgres\(|postgresTestStore|store: 'postgres'/.test(text);
}

/**
 * Starts what the selected files share; resolves to the variables for the test processes and a
 * `stop()` that is safe to call more than once. Nothing is started when no file needs it, or when
 * PostgreSQL is not installed (the files then skip or fail by their own rule, see needPostgres).
 */
export async function startTestServices(files) {
  const env = {};
  const stops = [];
  const helper = join(process.cwd(), 'dist', 'test', 'helpers', 'postgres.js');
  const wantPg = process.env.POPLAR_TEST_PG_URL === undefined && existsSync(helper) &&
    (process.env.POPLAR_TEST_STORE === 'postgres' || files.some(usesPostgres));
  if (wantPg) {
    const { startPostgres, SHARED_PG_ENV } = await import(helper);
    const { hasProgram } = await import(join(process.cwd(), 'dist', 'test', 'helpers', 'external.js'));
    if (['initdb', 'pg_ctl', 'postgres'].every(hasProgram)) {
      // Many test files at once, each with pools and server processes: room for their connections.
      const pg = await startPostgres({ own: true, settings: { max_connections: '500' } });
      env[SHARED_PG_ENV] = pg.url;
      stops.push(() => pg.stop());
    }
  }
  let stopped;
  const stop = () => (stopped ??= Promise.all(stops.map((s) => s().catch((e) => console.error(`run-tests: ${e.message}`)))));
  return { env, stop };
}

/**
 * Runs `node <args>` with inherited stdio and resolves to its exit status. SIGINT, SIGTERM and
 * SIGHUP are passed on to it (node --test then ends its test processes), and the runner goes on
 * to its cleanup when the child has ended.
 */
export function runNode(args, env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: 'inherit', env });
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    const forward = (sig) => child.kill(sig);
    for (const s of signals) process.on(s, forward);
    child.on('close', (code, signal) => {
      for (const s of signals) process.off(s, forward);
      resolve({ status: code ?? (signal ? 1 : 0), signal });
    });
  });
}

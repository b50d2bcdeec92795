// Services that scripts/run-tests.mjs starts once for a whole test run, and the run's file order.
//
// PostgreSQL: one cluster (initdb + pg_ctl, test/helpers/postgres.ts) instead of one per test file;
// its URL goes to the test processes as POPLAR_TEST_PG_URL, and each file's `startPostgres()` then
// creates its own databases in it (tests stay isolated: one database per test). Files that kill or
// restart their server ask for their own cluster. The cluster is stopped when the run ends, fails,
// or is interrupted (SIGINT, SIGTERM, SIGHUP); pg_ctl starts the postmaster in its own session, so
// a terminal's Ctrl-C reaches the runner, not the postmaster.
//
// Order: run-tests.mjs starts its runs (one test file under one setting) in the order given here.
// The runs that took longest last time (dist/.test-times.json, written by run-tests.mjs) start
// first, so the run does not end waiting on one long file started last; runs not timed yet are
// weighed by the seed list below.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where run-tests.mjs records each run's wall time in ms (dist/ is build output, never committed). */
export const TIMES_FILE = join('dist', '.test-times.json');

/**
 * Runs measured slowest (issue 13, a loaded 2-core machine), slowest first; only used for runs
 * that dist/.test-times.json does not time yet (a fresh checkout, as in CI). `W2` is the run under
 * POPLAR_TEST_WORKERS=2.
 */
const SEED_SLOW = ['e2e/failed-login-delay W2', 'e2e/ldap W2', 'e2e/ldap', 'e2e/update W2', 'e2e/workarounds W2', 'ops/workers',
  'ops/npm-pack', 'cli/postgres-directory', 'e2e/postgres-directory W2', 'e2e/limits W2', 'admin/console', 'e2e/gssapi W2',
  'e2e/auth-clients W2', 'e2e/tls W2', 'cluster/pg-limits', 'ops/crash-safety W2', 'ops/crash-safety', 'admin/workers', 'e2e/gssapi'];

/** A run never timed that the seed list does not name: a workers-pass run weighs this many times its file's own run. */
const WORKERS_FACTOR = 3.6;

/** The times of the last run, by run key (the file, then ` NAME=value` for a run under a setting). */
export function lastTimes() {
  try {
    return JSON.parse(readFileSync(TIMES_FILE, 'utf8'));
  } catch {
    return {};
  }
}

/** Adds `times` (run key -> ms) to the record; a read-only checkout keeps the old record. */
export function recordTimes(times) {
  const record = { ...lastTimes(), ...times };
  try {
    writeFileSync(TIMES_FILE, `${JSON.stringify(record, null, 1)}\n`);
  } catch {
    // The next run's order is then the old one.
  }
}

/**
 * `runs` ({ key, file }) with the slowest first, the rest in their order. A run's weight is its
 * time in the last run that ran it; a run never timed yet that is on the seed list counts as
 * 10-190 s by its place.
 */
export function longestFirst(runs) {
  const times = lastTimes();
  const weight = (run) => {
    if (typeof times[run.key] === 'number') return times[run.key];
    const workers = run.key.includes(' POPLAR_TEST_WORKERS=');
    const i = SEED_SLOW.findIndex((s) => s === `${run.file.replace(/^dist\/(test|src)\/|\.test\.js$/g, '')}${workers ? ' W2' : ''}`);
    if (i >= 0) return (SEED_SLOW.length - i) * 10_000;
    return workers && typeof times[run.file] === 'number' ? times[run.file] * WORKERS_FACTOR : 0;
  };
  return runs.map((run, i) => ({ run, i, t: weight(run) })).sort((a, b) => b.t - a.t || a.i - b.i).map((x) => x.run);
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

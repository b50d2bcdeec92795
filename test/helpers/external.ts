/**
 * Tests that need a program from outside Node (a real POP3 client, Dovecot, PostgreSQL, promtool)
 * ask for it here. On a machine without it the test is skipped with the reason and the Debian
 * package to install, and the skip is recorded so that `scripts/run-tests.mjs` names every skipped
 * group in one line at the end of the run. Where `POPLAR_REQUIRE_EXTERNAL=1` (set by `.ci/run`,
 * which installs every package), a missing program is not skipped: the test fails, so CI proves
 * every real client.
 *
 * Use: `describe('fetchmail', { skip: needProgram('fetchmail', 'fetchmail') }, () => …)`.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';

const found = new Map<string, boolean>();

/** Whether `bin` runs here (looked up on PATH and in the sbin folders once per process). */
export function hasProgram(bin: string): boolean {
  let ok = found.get(bin);
  if (ok === undefined) {
    const path = `${process.env.PATH ?? ''}:/usr/sbin:/sbin:/usr/lib/postgresql/15/bin`;
    const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', bin], { env: { ...process.env, PATH: path }, stdio: 'ignore' });
    ok = r.status === 0;
    found.set(bin, ok);
  }
  return ok;
}

/** CI sets this: a missing program is then a failure, never a skip. */
export const externalRequired = process.env.POPLAR_REQUIRE_EXTERNAL === '1';

/**
 * `false` when every program in `bins` is here (run the test), else the skip reason naming the
 * Debian package. Under `POPLAR_REQUIRE_EXTERNAL=1` it throws instead, failing the file that asked.
 */
export function needProgram(bins: string | readonly string[], pkg: string): string | false {
  const missing = (typeof bins === 'string' ? [bins] : bins).filter((b) => !hasProgram(b));
  if (missing.length === 0) return false;
  const reason = `needs ${missing.join(', ')} (apt-get install ${pkg})`;
  if (externalRequired) throw new Error(`${reason}: POPLAR_REQUIRE_EXTERNAL=1 makes a missing program a failure`);
  const log = process.env.POPLAR_SKIP_LOG;
  if (log) appendFileSync(log, `${pkg}\t${reason}\n`);
  return reason;
}

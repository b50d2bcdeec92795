/**
 * `node dist/bench/cold-start.js`: what the first login of each user after a start costs the
 * server, against the logins after it (issue 14). Starts `poplar serve` (--workers, default 1)
 * with a users file of --users users, all with one `doveadm pw -s <scheme>` hash, waits for it,
 * then runs --rounds rounds in which every user logs in once (USER/PASS, QUIT; --clients at once).
 * Prints, per round, the server's CPU per login (every process and thread of its tree, /proc) and
 * the round's wall time. Needs `doveadm` (Debian's dovecot-core) for the hashes.
 *
 *   node dist/bench/cold-start.js --scheme SHA512-CRYPT --users 300 --workers 2
 */
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from './args.js';
import { hashWithDoveadm, makeCert, waitForPort, writeUsers } from './compare/servers.js';
import { Pop3Client } from './pop3.js';
import { treeCpuSeconds } from './proc.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const a = parseArgs(process.argv.slice(2));
const scheme = a.str('scheme', 'SHA512-CRYPT');
const users = Array.from({ length: a.num('users', 300) }, (_, i) => `cold${i}`);
const workers = a.num('workers', 1);
const clients = a.num('clients', 8);
const rounds = a.num('rounds', 3);
const port = a.num('port-base', 32600);
const work = resolve(a.str('work', `/tmp/poplar-bench-cold-${process.pid}`));
const password = 'bench-password';

async function main(): Promise<void> {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, 'data/mail'), { recursive: true });
  writeUsers(join(work, 'users'), users, hashWithDoveadm(scheme, password));
  const cert = makeCert(work);
  const log = openSync(join(work, 'poplar.log'), 'a');
  const set = (k: string, v: string | number): string[] => ['-o', `${k}=${v}`];
  const child = spawn(process.execPath, [join(root, 'dist/src/cli/main.js'), 'serve', '--data', join(work, 'data'),
    ...set('pop3.listen', `127.0.0.1:${port}`), ...set('pop3.tls_listen', `127.0.0.1:${port + 1}`),
    ...set('lmtp.listen', `127.0.0.1:${port + 2}`), ...set('tls.cert', cert.cert), ...set('tls.key', cert.key),
    ...set('auth.users_file', join(work, 'users')), ...set('server.first_run_user', ''),
    ...set('server.workers', workers), ...set('pop3.max_connections_per_ip', 20000)], { cwd: work, stdio: ['ignore', log, log] });
  try {
    if (!(await waitForPort(port))) throw new Error(`poplar did not start: ${readFileSync(join(work, 'poplar.log'), 'utf8')}`);
    await new Promise((r) => setTimeout(r, 1500)); // the workers' own start is not a login's cost
    console.log(`{${scheme}}, ${users.length} users, server.workers = ${workers}, ${clients} clients`);
    for (let round = 1; round <= rounds; round++) {
      const cpu0 = treeCpuSeconds(child.pid!);
      const t0 = Date.now();
      let next = 0;
      await Promise.all(Array.from({ length: clients }, async () => {
        while (next < users.length) {
          const user = users[next++]!;
          const c = await Pop3Client.open({ host: '127.0.0.1', port });
          await c.login(user, password);
          await c.command('QUIT');
        }
      }));
      const cpu = (treeCpuSeconds(child.pid!) - cpu0) * 1000;
      console.log(`round ${round}: ${(cpu / users.length).toFixed(2)} ms server CPU per login, ${Date.now() - t0} ms wall`);
    }
  } finally {
    child.kill('SIGINT');
    await new Promise((r) => child.on('exit', r));
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`cold-start: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});

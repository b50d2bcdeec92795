/**
 * `npm run bench:syscalls`: what one LMTP delivery costs each server in system calls. Starts a
 * private Dovecot and poplar as `bench:compare` does, attaches `strace -f -c -w` to each server's
 * main process (following every process and thread it starts), runs the `deliver` scenario for
 * --duration seconds, and prints, per acknowledged delivery, the calls and the wall time spent
 * in them: fsync/fdatasync (durability), renames and links (Maildir's tmp → new), locks (flock,
 * fcntl, futex waits) and the rest. strace slows both servers, so the deliveries/s it sees are
 * not a benchmark; the counts per delivery are exact, and the wall time per call shows where a
 * delivery waits (the disk's flush latency, a lock, or the CPU).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from '../args.js';
import type { Result } from '../measure.js';
import { hashWithDoveadm, makeCert, startDovecot, startPoplar, writeUsers, type Server } from './servers.js';
import { mkdirSync, rmSync, existsSync, writeFileSync, chmodSync } from 'node:fs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const a = parseArgs(process.argv.slice(2));
const work = resolve(a.str('work', '/tmp/poplar-bench-syscalls'));
const duration = a.str('duration', '5');
const clients = a.str('clients', '8');
const base = a.num('port-base', 31500);
const password = 'bench-password';
const USERS = Array.from({ length: 10 }, (_, i) => `deliver${i}`);
const MARKER = 'poplar-bench-work';

interface Row { calls: number; errors: number; seconds: number }

/** Parses the table `strace -c` writes: `% time  seconds  usecs/call  calls  errors  syscall`. */
function parseSummary(text: string): Map<string, Row> {
  const out = new Map<string, Row>();
  for (const line of text.split('\n')) {
    const m = /^\s*[\d.]+\s+([\d.]+)\s+\d+\s+(\d+)\s+(\d+)?\s*([a-z_0-9]+)\s*$/.exec(line);
    if (m && m[4] !== 'total') out.set(m[4]!, { seconds: Number(m[1]), calls: Number(m[2]), errors: Number(m[3] ?? 0) });
  }
  return out;
}

function runDeliver(s: Server): Promise<Result> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [join(root, 'dist/bench/main.js'), 'deliver', '--clients', clients,
      '--port', String(s.ports.lmtp), '--duration', duration, '--maildir', s.maildir,
      ...(s.chown ? ['--chown', s.chown] : []), '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.on('exit', (code) => {
      const json = stdout.trim().split('\n').pop() ?? '';
      if (code === 0 && json.startsWith('{')) done(JSON.parse(json) as Result);
      else fail(new Error(`deliver against ${s.name} failed (exit ${code})`));
    });
  });
}

async function measure(s: Server): Promise<{ deliveries: number; rows: Map<string, Row> }> {
  const file = join(work, `${s.name}.strace`);
  const strace = spawn('strace', ['-f', '-c', '-w', '-o', file, '-p', String(s.pid)], { stdio: 'ignore' });
  await sleep(1000); // strace attaches to every existing thread first
  const result = await runDeliver(s);
  await sleep(500);
  strace.kill('SIGINT');
  await new Promise((r) => strace.on('exit', r));
  return { deliveries: result.verified, rows: parseSummary(readFileSync(file, 'utf8')) };
}

const GROUPS: [string, RegExp][] = [
  ['fsync + fdatasync', /^(fsync|fdatasync|sync_file_range)$/],
  ['rename + link + unlink', /^(rename|renameat2?|link|linkat|unlink|unlinkat)$/],
  ['open + close', /^(open|openat|close)$/],
  ['stat family', /^(stat|fstat|lstat|newfstatat|statx)$/],
  ['flock + fcntl', /^(flock|fcntl)$/],
  ['futex (thread waits)', /^futex$/],
  ['epoll + poll', /^(epoll_wait|epoll_pwait|poll|ppoll|select)$/],
  ['write family', /^(write|writev|pwrite64|pwritev|sendto|sendmsg)$/],
  ['read family', /^(read|readv|pread64|recvfrom|recvmsg)$/],
];

function report(name: string, m: { deliveries: number; rows: Map<string, Row> }): string[] {
  const lines = [`## ${name}: ${m.deliveries} deliveries acknowledged under strace`, '',
    '| calls | per delivery | wall ms per delivery | wall µs per call |', '| --- | --- | --- | --- |'];
  const seen = new Set<string>();
  for (const [label, re] of GROUPS) {
    let calls = 0;
    let seconds = 0;
    for (const [sys, r] of m.rows) if (re.test(sys)) { calls += r.calls; seconds += r.seconds; seen.add(sys); }
    lines.push(`| ${label} | ${(calls / m.deliveries).toFixed(2)} | ${((seconds * 1000) / m.deliveries).toFixed(3)} | ${calls ? ((seconds * 1e6) / calls).toFixed(0) : '-'} |`);
  }
  let other = 0;
  for (const [sys, r] of m.rows) if (!seen.has(sys)) other += r.calls;
  lines.push(`| everything else | ${(other / m.deliveries).toFixed(2)} | | |`, '');
  const top = [...m.rows].sort((x, y) => y[1].calls - x[1].calls).slice(0, 12);
  lines.push(`Most frequent: ${top.map(([s, r]) => `${s} ${(r.calls / m.deliveries).toFixed(1)}`).join(', ')}.`, '');
  return lines;
}

async function main(): Promise<void> {
  if (existsSync(work)) {
    if (!existsSync(join(work, MARKER))) throw new Error(`${work} exists and was not made by bench:syscalls`);
    rmSync(work, { recursive: true, force: true });
  }
  mkdirSync(work, { recursive: true });
  chmodSync(work, 0o755);
  writeFileSync(join(work, MARKER), '');
  const cert = makeCert(work);
  const usersFile = join(work, 'users');
  writeUsers(usersFile, USERS, hashWithDoveadm('SHA512-CRYPT', password));
  const servers: Server[] = [];
  const out: string[] = [`# Syscalls per LMTP delivery (${clients} clients, ${duration} s, strace -f -c -w)`, ''];
  try {
    servers.push(await startPoplar({ root, work, usersFile, cert, nodeArgs: [], authCache: true, ports: { pop3: base + 110, pop3s: base + 995, lmtp: base + 24 } }));
    servers.push(await startDovecot({ work, usersFile, cert, authCache: true, ports: { pop3: base + 1110, pop3s: base + 1995, lmtp: base + 1024 } }));
    for (const s of servers) out.push(...report(s.name, await measure(s)));
  } finally {
    for (const s of servers) await s.stop();
  }
  console.log(out.join('\n'));
}

main().catch((e: unknown) => {
  console.error(`bench:syscalls: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});

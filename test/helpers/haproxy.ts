/**
 * A real HAProxy (Debian's `haproxy`) in front of poplar nodes, as a provider runs it: TCP mode,
 * round robin, and `send-proxy-v2` so every node learns the client's address from the PROXY
 * header (R-X13, R-X17). Each frontend listens on a free loopback port; `haproxy -db` runs in
 * the foreground and stop() ends it. Skip rule: needProgram('haproxy', 'haproxy').
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait.js';
import { freeLowPort } from './ports.js';

export interface Frontend {
  readonly name: string;
  /** Loopback ports of the nodes behind this frontend. */
  readonly backends: readonly number[];
  /** Send a PROXY v2 header to the nodes (POP3: yes; LMTP: poplar's LMTP reads none). Default true. */
  readonly sendProxy?: boolean;
  /**
   * Health checks (a TCP connect every 500 ms, with the PROXY header when sendProxy; down after 2
   * failures) and `option redispatch 1`, so a connection to a dead node is retried on another one
   * (the cluster tests kill nodes). Default false.
   */
  readonly check?: boolean;
}

export interface Haproxy {
  /** frontend name → the port HAProxy listens on. */
  readonly ports: Record<string, number>;
  /** The haproxy.cfg it runs (docs/scaling.md shows it). */
  readonly config: string;
  stop(): Promise<void>;
}

function config(fronts: readonly (Frontend & { port: number })[]): string {
  const lines = [
    // One thread: round robin then alternates strictly (with several threads HAProxy 2.6 may hand two
    // consecutive connections to one server, which the tests that count sessions per node would see).
    'global', '  maxconn 4096', '  nbthread 1', '',
    'defaults', '  mode tcp', '  timeout connect 5s', '  timeout client 120s', '  timeout server 120s', '',
  ];
  for (const f of fronts) {
    lines.push(`frontend ${f.name}`, `  bind 127.0.0.1:${f.port}`, `  default_backend ${f.name}_nodes`, '');
    lines.push(`backend ${f.name}_nodes`, '  balance roundrobin');
    if (f.check === true) lines.push('  option redispatch 1', '  retries 3');
    const proxy = f.sendProxy === false ? '' : ' send-proxy-v2';
    const check = f.check !== true ? '' : ` check inter 500 fall 2 rise 1${proxy === '' ? '' : ' check-send-proxy'}`;
    f.backends.forEach((p, i) => lines.push(`  server node${i + 1} 127.0.0.1:${p}${proxy}${check}`));
    lines.push('');
  }
  return lines.join('\n');
}

export async function startHaproxy(frontends: readonly Frontend[]): Promise<Haproxy> {
  const dir = await mkdtemp(join(tmpdir(), 'poplar-haproxy-'));
  const fronts: (Frontend & { port: number })[] = [];
  for (const f of frontends) fronts.push({ ...f, port: await freeLowPort() });
  const file = join(dir, 'haproxy.cfg');
  const text = config(fronts);
  await writeFile(file, text);
  const child = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const accepts = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`haproxy exited ${child.exitCode}: ${log}`);
      for (const f of fronts) if (!(await accepts(f.port))) return false;
      return true;
    }, 10_000, 'haproxy listening');
  } catch (e) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    ports: Object.fromEntries(fronts.map((f) => [f.name, f.port])),
    config: text,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

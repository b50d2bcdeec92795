/**
 * `idle`: opens `--sessions` authenticated sessions (USER/PASS/STAT) and holds them. Memory per
 * session = (server tree PSS with the sessions − PSS before) / sessions. NOOP latency is sampled
 * by `--samplers` loops on random sessions, each pausing `--interval` ms between NOOPs, for `--duration` seconds; at the end every session
 * must still answer NOOP. Sessions are then dropped without QUIT. Needs --server-pid for memory;
 * the client needs one descriptor per session (raise `ulimit -n`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Args } from '../args.js';
import { forEachLimited, percentile, runLoops, startSpan, type Result } from '../measure.js';
import { Pop3Client } from '../pop3.js';
import { treePssBytes } from '../proc.js';
import { boxIds, commonFrom, seedUsers, usersOf } from './common.js';

export async function idle(a: Args): Promise<Result> {
  const c = commonFrom(a);
  const n = a.num('sessions', 10_000);
  const users = usersOf(a.str('user-prefix', 'idle'), a.num('users', 100));
  seedUsers(c, users, { ids: boxIds('idle', 1), sizeOf: () => 2000 });
  const pss = (): number => (c.serverPid === undefined ? NaN : treePssBytes(c.serverPid));

  const before = pss();
  const sessions: Pop3Client[] = [];
  const t0 = performance.now();
  try {
    await forEachLimited(n, a.num('open-concurrency', 64), async (i) => {
      const p = await Pop3Client.open({ ...c.target, timeoutMs: 0 }); // held open for minutes
      sessions.push(p);
      await p.login(users[i % users.length]!, c.password);
      await p.stat();
    });
    const openS = (performance.now() - t0) / 1000;
    await sleep(a.num('settle', 2) * 1000);
    const after = pss();

    const latencies: number[] = [];
    const end = startSpan(c.serverPid);
    const interval = a.num('interval', 10); // ms each sampler waits between NOOPs
    const busy = new Set<number>(); // one command at a time per session
    await runLoops(a.num('samplers', 8), a.num('duration', 10), async () => {
      let k = Math.floor(Math.random() * sessions.length);
      while (busy.has(k)) k = (k + 1) % sessions.length;
      busy.add(k);
      const t = performance.now();
      await sessions[k]!.command('NOOP');
      latencies.push(performance.now() - t);
      busy.delete(k);
      await sleep(interval);
    });
    const s = end();
    await forEachLimited(sessions.length, 256, async (i) => void (await sessions[i]!.command('NOOP')));
    return {
      scenario: 'idle',
      metrics: [
        { name: 'idle memory per session', value: (after - before) / n / 1024, unit: 'KiB', better: 'lower' },
        { name: 'idle NOOP p50', value: percentile(latencies, 50), unit: 'ms', better: 'lower' },
        { name: 'idle NOOP p99', value: percentile(latencies, 99), unit: 'ms', better: 'lower' },
        { name: 'idle sessions opened/s', value: n / openS, unit: '/s', better: 'higher' },
      ],
      ...s,
      verified: n + latencies.length,
      notes: [
        `${n} sessions over ${users.length} users, opened in ${openS.toFixed(1)} s; PSS ${(before / 2 ** 20).toFixed(0)} → ${(after / 2 ** 20).toFixed(0)} MiB`,
        `${latencies.length} NOOPs sampled; CPU figures cover the sampling only`,
      ],
    };
  } finally {
    for (const p of sessions) p.destroy();
  }
}

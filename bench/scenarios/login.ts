/**
 * `login`: C clients loop connect → USER/PASS → STAT → QUIT (with --tls over implicit TLS).
 * Every STAT must report the seeded count and octets. Figures: sessions/s, server CPU per
 * session, session latency p50/p99.
 */
import type { Args } from '../args.js';
import { dbCpuMetric, percentile, runLoops, startSpan, type Result } from '../measure.js';
import { Pop3Client } from '../pop3.js';
import { boxIds, commonFrom, seedUsers, usersOf } from './common.js';

export async function login(a: Args): Promise<Result> {
  const c = commonFrom(a);
  const clients = a.num('clients', 16);
  const users = usersOf(a.str('user-prefix', 'login'), a.num('users', clients));
  const size = a.num('size', 4096);
  const expect = seedUsers(c, users, { ids: boxIds('login', a.num('messages', 10)), sizeOf: () => size });
  const latencies: number[] = [];
  const end = startSpan(c.serverPid, c.dbPid);
  const sessions = await runLoops(clients, a.num('duration', 10), async (w, i) => {
    const t0 = performance.now();
    const p = await Pop3Client.open(c.target);
    try {
      await p.login(users[(w + i * clients) % users.length]!, c.password);
      const st = await p.stat();
      if (st.count !== expect.count || st.octets !== expect.octets) {
        throw new Error(`STAT ${st.count} ${st.octets}, seeded ${expect.count} ${expect.octets}`);
      }
      await p.quit();
    } finally {
      p.destroy();
    }
    latencies.push(performance.now() - t0);
  });
  const s = end();
  const tls = c.target.tls === true ? ' (TLS)' : '';
  return {
    scenario: `login${tls}`,
    metrics: [
      { name: `login sessions/s${tls}`, value: sessions / s.wallS, unit: '/s', better: 'higher' },
      ...(s.serverCpuS === undefined
        ? []
        : [{ name: `login server CPU per session${tls}`, value: (s.serverCpuS * 1000) / sessions, unit: 'ms', better: 'lower' as const }]),
      ...dbCpuMetric(s, `login database CPU per session${tls}`, sessions, 1000, 'ms'),
      { name: `login latency p50${tls}`, value: percentile(latencies, 50), unit: 'ms', better: 'lower' },
      { name: `login latency p99${tls}`, value: percentile(latencies, 99), unit: 'ms', better: 'lower' },
    ],
    ...s,
    verified: sessions,
    notes: [`${clients} clients, ${users.length} users, ${sessions} sessions; bench client ${((s.clientCpuS * 1e6) / sessions).toFixed(0)} µs CPU per session`],
  };
}

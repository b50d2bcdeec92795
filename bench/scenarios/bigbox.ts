/**
 * `bigbox`: one maildrop of 50,000 messages (500–4,000 octets). First sight: the first login
 * after seeding, when the server must size every file; then `--reps` settled sessions. Each
 * session times connect+login+STAT, LIST and UIDL separately. Checks: STAT equals the seeded
 * count and octets; LIST's sizes are exactly the seeded sizes; UIDL has one unique id per message;
 * `--sample` messages are RETRed and compared byte for byte (that session ends without QUIT, so
 * nothing changes on the server).
 *   Memory (given the server's pid; no target, for the "memory for LIST/UIDL stays
 * bounded"): the server tree's PSS before first sight and after a last, untimed login+STAT gives
 * its memory per message held for the maildrop (index, listing cache, session); that is taken a
 * few seconds after the first sight, so for poplar it includes the heaps of its first-sight
 * worker threads, which end 30 s later (storage/maildir/maildir-bulk.ts). PSS sampled every few
 * ms while that session's LIST and UIDL arrive (the processes of the tree as they were after
 * STAT) gives what listing costs on top, which must not grow with the listing's size (a server
 * that built the whole reply first would need ~14 octets per message for each).
 */
import type { Args } from '../args.js';
import { dbCpuMetric, median, startSpan, type Metric, type Result } from '../measure.js';
import { processTree, pssBytes, treePssBytes } from '../proc.js';
import { benchId, Expected, toCrlf, makeMessage } from '../messages.js';
import { Pop3Client } from '../pop3.js';
import { boxIds, commonFrom, seedUsers, type Common } from './common.js';

interface Timing {
  stat: number;
  list: number;
  uidl: number;
}

export async function bigbox(a: Args): Promise<Result> {
  const c = commonFrom(a);
  const user = a.str('user', 'bigbox');
  const n = a.num('messages', 50_000);
  const sizeOf = (id: string): number => 500 + ((Number(id.slice(id.lastIndexOf('-') + 1)) * 7919) % 3500);
  const ids = boxIds('big', n);
  const expect = seedUsers(c, [user], { ids, sizeOf });
  const sizes = ids.map((id) => toCrlf(makeMessage(c.seed, id, sizeOf(id))).length).sort((x, y) => x - y);

  const pssBefore = c.serverPid === undefined ? 0 : treePssBytes(c.serverPid);
  const end = startSpan(c.serverPid, c.dbPid);
  const first = await session(c, user, expect, sizes);
  const firstSpan = end();
  const settled: Timing[] = [];
  for (let i = 0; i < a.num('reps', 5); i++) settled.push(await session(c, user, expect, sizes));
  const verified = 3 * (1 + settled.length) + (await sample(c, user, new Expected(c.seed, sizeOf), a.num('sample', 20)));
  const m = (k: keyof Timing): number => median(settled.map((t) => t[k]));
  const ms = 'ms';
  const memory: Metric[] = [];
  const notes: string[] = [];
  if (c.serverPid !== undefined) {
    const mem = await listingMemory(c, c.serverPid, user);
    memory.push({ name: 'bigbox server memory per message', value: (mem.afterStat - pssBefore) / n, unit: 'B', better: 'lower' });
    const mib = (b: number): string => (b / 2 ** 20).toFixed(1);
    const kib = ((mem.peak - mem.afterStat) / 1024).toFixed(0);
    notes.push(`server PSS ${mib(pssBefore)} MiB before first sight, ${mib(mem.afterStat)} after login+STAT, at most ${kib} KiB more during LIST+UIDL`);
  }
  return {
    scenario: 'bigbox',
    metrics: [
      { name: 'bigbox first sight login+STAT', value: first.stat, unit: ms, better: 'lower' },
      { name: 'bigbox first sight LIST', value: first.list, unit: ms, better: 'lower' },
      { name: 'bigbox first sight UIDL', value: first.uidl, unit: ms, better: 'lower' },
      { name: 'bigbox settled login+STAT', value: m('stat'), unit: ms, better: 'lower' },
      { name: 'bigbox settled LIST', value: m('list'), unit: ms, better: 'lower' },
      { name: 'bigbox settled UIDL', value: m('uidl'), unit: ms, better: 'lower' },
      ...dbCpuMetric(firstSpan, 'bigbox first sight database CPU', 1, 1000, 'ms'),
      ...memory,
    ],
    ...firstSpan,
    verified,
    notes: [`${n} messages, ${(expect.octets / 1e6).toFixed(0)} MB; settled figures are medians of ${settled.length} sessions; CPU is the first-sight session's`, ...notes],
  };
}

async function session(c: Common, user: string, expect: { count: number; octets: number }, sizes: number[]): Promise<Timing> {
  const t0 = performance.now();
  const p = await Pop3Client.open(c.target);
  try {
    await p.login(user, c.password);
    const st = await p.stat();
    const t1 = performance.now();
    if (st.count !== expect.count || st.octets !== expect.octets) {
      throw new Error(`STAT ${st.count} ${st.octets}, seeded ${expect.count} ${expect.octets}`);
    }
    // The replies are parsed after their time is taken: the figures are the server's, not the
    // bench client's splitting of 50,000 lines.
    const listReply = await p.multi('LIST');
    const t2 = performance.now();
    const list = lines(listReply);
    const got = list.map((l) => Number(l.slice(l.indexOf(' ') + 1))).sort((x, y) => x - y);
    if (got.length !== sizes.length || got.some((v, i) => v !== sizes[i])) throw new Error('LIST sizes differ from the seeded sizes');
    const uidlReply = await p.multi('UIDL');
    const t3 = performance.now();
    const uidl = lines(uidlReply);
    if (uidl.length !== expect.count || new Set(uidl.map((l) => l.slice(l.indexOf(' ') + 1))).size !== expect.count) {
      throw new Error('UIDL: not one unique id per message');
    }
    await p.quit();
    return { stat: t1 - t0, list: t2 - t1, uidl: t3 - t2 };
  } finally {
    p.destroy();
  }
}

/**
 * One more login+STAT, LIST and UIDL, untimed: the server tree's PSS after STAT, and its peak
 * while the listings arrive (sampled every 2 ms from this process's event loop, which runs between
 * the chunks it receives). Ends with QUIT.
 */
async function listingMemory(c: Common, pid: number, user: string): Promise<{ afterStat: number; peak: number }> {
  const p = await Pop3Client.open(c.target);
  try {
    await p.login(user, c.password);
    await p.stat();
    const pids = processTree(pid); // once: walking /proc on every sample would take longer than 2 ms
    const afterStat = pssBytes(pids);
    let peak = afterStat;
    const timer = setInterval(() => {
      peak = Math.max(peak, pssBytes(pids));
    }, 2);
    try {
      await p.multi('LIST');
      await p.multi('UIDL');
    } finally {
      clearInterval(timer);
    }
    peak = Math.max(peak, pssBytes(pids));
    await p.quit();
    return { afterStat, peak };
  } finally {
    p.destroy();
  }
}

/** RETRs `k` messages spread over the box and verifies them; ends without QUIT. */
async function sample(c: Common, user: string, expected: Expected, k: number): Promise<number> {
  const p = await Pop3Client.open(c.target);
  try {
    await p.login(user, c.password);
    const { count } = await p.stat();
    for (let i = 0; i < k; i++) {
      const n = 1 + Math.floor((i * count) / k);
      const size = Number((await p.command(`LIST ${n}`)).trim().split(' ')[1]);
      const got = await p.retr(n);
      const id = benchId(got);
      if (got.length !== size || id === undefined || !got.equals(expected.get(id))) throw new Error(`RETR ${n} differs from the seeded message`);
    }
    return k;
  } finally {
    p.destroy();
  }
}

const lines = (b: Buffer): string[] => b.toString('latin1').split('\r\n').filter((l) => l !== '');

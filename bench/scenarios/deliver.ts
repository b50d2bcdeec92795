/**
 * `deliver`: C LMTP clients deliver messages to `--users` recipients for `--duration` seconds,
 * each on one connection, one transaction at a time. A delivery counts once the server has
 * answered 250 to its DATA. With --maildir, the maildrops are emptied first and afterwards each
 * must hold exactly the acknowledged messages, and a sample must end with the bytes sent
 * (servers prepend trace headers; line endings are compared in CRLF form).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Args } from '../args.js';
import { dbCpuMetric, runLoops, startSpan, type Result } from '../measure.js';
import { makeMessage, runSeedHook, seedMaildir, toCrlf } from '../messages.js';
import { LmtpClient } from '../lmtp.js';
import { Pop3Client, type Target } from '../pop3.js';
import { commonFrom, usersOf } from './common.js';

export async function deliver(a: Args): Promise<Result> {
  const c = commonFrom(a, 24);
  const clients = a.num('clients', 8);
  const users = usersOf(a.str('user-prefix', 'deliver'), a.num('users', 10));
  const domain = a.str('domain', 'localhost');
  const size = a.num('size', 4096);
  const pool = Array.from({ length: 64 }, (_, i) => toCrlf(makeMessage(c.seed, `deliver-${i}`, size)));
  if (c.seeding) {
    for (const u of users) seedMaildir(c.seeding, u, [], () => Buffer.alloc(0));
    runSeedHook(c.seeding, users);
  }
  const sent = new Map<string, number>(users.map((u) => [u, 0]));
  const conns = await Promise.all(Array.from({ length: clients }, () => LmtpClient.open(c.target.host, c.target.port)));

  const end = startSpan(c.serverPid, c.dbPid);
  const delivered = await runLoops(clients, a.num('duration', 10), async (w, i) => {
    const user = users[(w * 7 + i) % users.length]!;
    await conns[w]!.deliver(`bench@bench.example`, `${user}@${domain}`, pool[(w + i) % pool.length]!);
    sent.set(user, sent.get(user)! + 1);
  });
  const s = end();
  await Promise.all(conns.map((x) => x.quit()));

  let verified = 0;
  if (c.seeding?.hook !== undefined) {
    // The mail is not in these Maildirs (poplar on PostgreSQL): checked through POP3 (--pop3-port).
    const pop3: Target = { ...c.target, port: a.num('pop3-port', 110) };
    for (const u of users) verified += await viaPop3(pop3, c.password, u, sent.get(u)!, pool);
  } else if (c.seeding) {
    for (const u of users) {
      const root = c.seeding.maildir.replaceAll('%u', u);
      const files = ['new', 'cur'].flatMap((d) => readdirSync(join(root, d)).map((f) => join(root, d, f)));
      if (files.length !== sent.get(u)) throw new Error(`${u}: ${files.length} messages stored, ${sent.get(u)} acknowledged`);
      for (const f of files.slice(0, 5)) {
        const stored = toCrlf(readFileSync(f));
        if (!pool.some((m) => stored.subarray(stored.length - m.length).equals(m))) throw new Error(`${f}: not a message that was sent`);
      }
      verified += files.length;
    }
  }
  return {
    scenario: 'deliver',
    metrics: [
      { name: 'deliver deliveries/s', value: delivered / s.wallS, unit: '/s', better: 'higher' },
      ...(s.serverCpuS === undefined
        ? []
        : [{ name: 'deliver server CPU per delivery', value: (s.serverCpuS * 1000) / delivered, unit: 'ms', better: 'lower' as const }]),
      ...dbCpuMetric(s, 'deliver database CPU per delivery', delivered, 1000, 'ms'),
    ],
    ...s,
    verified,
    notes: [`${clients} LMTP clients, ${users.length} recipients, ${delivered} messages of ~${size} octets; bench client ${((s.clientCpuS * 1e6) / delivered).toFixed(0)} µs CPU per delivery`],
  };
}

/** The user's maildrop through POP3: exactly `sent` messages, the last five ending with a message sent. */
async function viaPop3(target: Target, password: string, user: string, sent: number, pool: readonly Buffer[]): Promise<number> {
  const p = await Pop3Client.open(target);
  try {
    await p.login(user, password);
    const { count } = await p.stat();
    if (count !== sent) throw new Error(`${user}: ${count} messages stored, ${sent} acknowledged`);
    for (let n = Math.max(1, count - 4); n <= count; n++) {
      const stored = toCrlf(await p.retr(n));
      if (!pool.some((m) => stored.subarray(stored.length - m.length).equals(m))) throw new Error(`${user} RETR ${n}: not a message that was sent`);
    }
    await p.quit();
    return count;
  } finally {
    p.destroy();
  }
}

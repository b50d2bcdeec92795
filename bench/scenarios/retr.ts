/**
 * `retr`: each of C clients logs in as its own user and RETRs its whole maildrop (LIST, then
 * RETR 1..n, QUIT), again and again. Every message is compared byte for byte with what was
 * seeded (CRLF form, dot-unstuffed) and its length with its LIST size. One unmeasured pass per
 * user first, so first-sight sizing and the page cache do not count. Each pass is one session, so
 * its login is included (about 5% of a pass's server CPU with the default 32 MiB maildrop).
 */
import type { Args } from '../args.js';
import { startSpan, type Result } from '../measure.js';
import { benchId, Expected } from '../messages.js';
import { Pop3Client } from '../pop3.js';
import { boxIds, commonFrom, seedUsers, usersOf, type Common } from './common.js';

const label = (size: number): string => (size >= 1 << 20 ? `${Math.round(size / (1 << 20))}MB` : `${Math.round(size / 1024)}KB`);

export async function retr(a: Args): Promise<Result> {
  const c = commonFrom(a);
  const size = a.num('size', 100 * 1024);
  const clients = a.num('clients', 4);
  const messages = a.num('messages', Math.max(2, Math.round((32 << 20) / size))); // ~32 MiB: login is ~5% of a pass
  const box = `retr${label(size)}`;
  const users = usersOf(a.str('user-prefix', `${box.toLowerCase()}-u`), clients);
  seedUsers(c, users, { ids: boxIds(box, messages), sizeOf: () => size });
  const expected = new Expected(c.seed, () => size);
  await Promise.all(users.map((u) => pass(c, u, expected))); // warm-up, unmeasured

  const deadline = performance.now() + a.num('duration', 10) * 1000;
  let bytes = 0;
  let verified = 0;
  const end = startSpan(c.serverPid);
  await Promise.all(
    users.map(async (u) => {
      while (performance.now() < deadline) {
        const r = await pass(c, u, expected);
        bytes += r.bytes;
        verified += r.messages;
      }
    }),
  );
  const s = end();
  const name = `retr ${label(size)}`;
  return {
    scenario: name,
    metrics: [
      { name: `${name} MB/s`, value: bytes / 1e6 / s.wallS, unit: 'MB/s', better: 'higher' },
      ...(s.serverCpuS === undefined
        ? []
        : [{ name: `${name} server CPU per GB`, value: s.serverCpuS / (bytes / 1e9), unit: 'CPU-s/GB', better: 'lower' as const }]),
    ],
    ...s,
    verified,
    notes: [`${clients} clients × ${messages} messages of ${size} octets; ${(bytes / 1e6).toFixed(0)} MB received`],
  };
}

/** One session: LIST, RETR every message (verified), QUIT. */
async function pass(c: Common, user: string, expected: Expected): Promise<{ bytes: number; messages: number }> {
  const p = await Pop3Client.open(c.target);
  try {
    await p.login(user, c.password);
    const list = (await p.multi('LIST')).toString('latin1').split('\r\n').filter((l) => l !== '');
    let bytes = 0;
    for (const line of list) {
      const [n, octets] = line.split(' ').map(Number);
      const got = await p.retr(n!);
      if (got.length !== octets) throw new Error(`${user} RETR ${n}: ${got.length} octets, LIST said ${octets}`);
      const id = benchId(got);
      if (id === undefined || !got.equals(expected.get(id))) throw new Error(`${user} RETR ${n}: differs from message ${id ?? '?'} as seeded`);
      bytes += got.length;
    }
    await p.quit();
    return { bytes, messages: list.length };
  } finally {
    p.destroy();
  }
}

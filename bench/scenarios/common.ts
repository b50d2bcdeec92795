/** Options every scenario shares, and the seeding of a set of bench users' maildrops. */
import type { Args } from '../args.js';
import { makeMessage, runSeedHook, seedMaildir, toCrlf, type SeedOptions } from '../messages.js';
import type { Target } from '../pop3.js';

export interface Common {
  readonly target: Target;
  readonly password: string;
  readonly seed: number;
  readonly serverPid: number | undefined;
  /** `--db-pid`: the database's postmaster, whose tree's CPU is measured beside the server's. */
  readonly dbPid: number | undefined;
  /** Set with --maildir: the scenario seeds its users' maildrops before it runs. */
  readonly seeding: SeedOptions | undefined;
}

export function commonFrom(a: Args, defaultPort = 110): Common {
  const chown = a.str('chown', '');
  const [uid, gid] = chown.split(':').map(Number);
  return {
    target: { host: a.str('host', '127.0.0.1'), port: a.num('port', defaultPort), tls: a.flag('tls') },
    password: a.str('password', 'bench-password'),
    seed: a.num('seed', 1),
    serverPid: a.has('server-pid') ? a.num('server-pid', 0) : undefined,
    dbPid: a.has('db-pid') ? a.num('db-pid', 0) : undefined,
    seeding: a.has('maildir')
      ? {
          maildir: a.str('maildir', ''),
          ...(chown === '' ? {} : { chown: { uid: uid!, gid: gid ?? uid! } }),
          ...(a.has('seed-hook') ? { hook: a.str('seed-hook', '').split(' ').filter((s) => s !== '') } : {}),
        }
      : undefined,
  };
}

/** Message ids of one maildrop: `<box>-0` … `<box>-(n-1)`; every user with the same box holds the same mail. */
export const boxIds = (box: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${box}-${i}`);

export interface Box {
  readonly ids: string[];
  readonly sizeOf: (id: string) => number;
}

/** Seeds (when --maildir is given) the users' maildrops with the box; returns STAT's expected figures. */
export function seedUsers(c: Common, users: readonly string[], box: Box): { count: number; octets: number } {
  let octets = 0;
  const files = box.ids.map((id) => makeMessage(c.seed, id, box.sizeOf(id)));
  for (const f of files) octets += toCrlf(f).length;
  if (c.seeding) {
    const byId = new Map(box.ids.map((id, i) => [id, files[i]!]));
    for (const u of users) seedMaildir(c.seeding, u, box.ids, (id) => byId.get(id)!);
    runSeedHook(c.seeding, users);
  }
  return { count: box.ids.length, octets };
}

export const usersOf = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

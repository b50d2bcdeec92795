/**
 * The `[postgres]` section of the config schema (config/schema.ts): the database behind
 * `storage.backend = "postgres"` (issue 15). Same rules as the rest of the schema: every key has its
 * default, range, doc string and requirement ids.
 */
import { z } from 'zod';
import { meta } from './schema-meta.js';

/** What a `postgres.url` must look like: a libpq-style URL (`postgres://` or `postgresql://`). */
export function postgresUrlProblem(url: string): string | undefined {
  if (url === '') return undefined;
  if (!/^postgres(ql)?:\/\//.test(url)) return 'must be a postgres:// or postgresql:// URL';
  return undefined;
}

export const postgres = z
  .strictObject({
    url: z.string().default('').superRefine((s, ctx) => {
      const problem = postgresUrlProblem(s);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    }).meta(meta({
      description:
        'The database, as a libpq-style URL: `postgres://user:password@host:5432/poplar`. Several hosts ' +
        '(`postgres://db1:5432,db2:5432/poplar?target_session_attrs=read-write`) are tried in order, and ' +
        'with `target_session_attrs=read-write` only a primary is used, so a promoted standby is found ' +
        'after a failover. Required when `storage.backend = "postgres"`. The password is never logged.',
      requirements: ['R-X17'],
    })),
    pool_size: z.number().int().min(2).max(1000).default(10).meta(meta({
      description:
        'Connections each poplar process keeps to the database at most (deliveries, logins, RETR reads ' +
        'and commits share them; `pop3.lock_mode = "exclusive"` sessions hold one more each, for their lock).',
      requirements: ['R-X17'],
    })),
    connect_timeout: z.number().int().min(1).max(600).default(10).meta(meta({
      description: 'Seconds to wait for a connection to the database (each host of the URL in turn) before the operation fails.',
      requirements: ['R-X17'],
    })),
    statement_timeout: z.number().int().min(0).max(3_600_000).default(30_000).meta(meta({
      description:
        'Milliseconds a statement may run on the database before it is cancelled and the operation fails ' +
        '(`-ERR [SYS/TEMP]`, `451` for LMTP); 0: no limit.',
      requirements: ['R-X17'],
    })),
    lease_seconds: z.number().int().min(5).max(3600).default(60).meta(meta({
      description:
        'Life of a session\'s claim on a maildrop (R-S3 `[IN-USE]`, retention\'s "a session is open"), ' +
        'renewed every third of it while the session lives: the claims of a node that died without ' +
        'releasing them lapse after at most this long. The same lease bounds the node\'s share of the ' +
        'cluster\'s shared state (its users\' session slots) and the retention sweeper\'s role.',
      requirements: ['R-S3', 'R-X17'],
    })),
  })
  .prefault({})
  .meta(meta({ description: 'PostgreSQL, for `storage.backend = "postgres"` (several poplar nodes on one database).' }));

/**
 * `node dist/bench/compare/pg-seed.js --url URL USER=MAILDIR …`: hands the Maildirs a bench
 * scenario seeded to the PostgreSQL-backed poplar (bench:compare's `poplar-pg`), through poplar's
 * own code: each user's maildrop is emptied (MailStore.expire of every message) and the Maildir
 * imported with `poplar import`'s importMail, in one process for all users (no CLI start per
 * user). The seeding connection runs with synchronous_commit = off: 50,000 imported messages
 * are 50,000 transactions, and waiting for a WAL flush after each would make the seeding, not
 * the server, the long part of the run; a CHECKPOINT at the end writes everything out before
 * the measured runs start. The server's own connections keep synchronous_commit = on.
 */
import { createLogger } from '../../src/observability/logger.js';
import { importMail } from '../../src/migrate/import.js';
import { connectPostgres } from '../../src/storage/postgres/client.js';
import { PostgresMailStore } from '../../src/storage/postgres/pg-store.js';
import { parseArgs } from '../args.js';

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const url = a.str('url', '');
  if (url === '') throw new Error('--url is required');
  const seeding = `${url}${url.includes('?') ? '&' : '?'}synchronous_commit=off`;
  const sql = connectPostgres({ url: seeding, poolSize: 2, statementTimeout: 0 });
  const store = new PostgresMailStore({ sql, ownsPool: true });
  const logger = createLogger('warn', process.stderr);
  try {
    await store.ready();
    for (const pair of a.positional) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new Error(`expected USER=MAILDIR, got ${pair}`);
      const user = pair.slice(0, eq);
      // A session of the previous run may still be closing (its claim is released just after).
      for (let i = 0; (await store.expire(user, () => true)).inUse; i++) {
        if (i === 50) throw new Error(`${user}: maildrop still in use after 5 s, cannot empty it`);
        await new Promise((r) => setTimeout(r, 100));
      }
      await importMail(store, user, pair.slice(eq + 1), 'maildir', logger);
    }
    await sql`CHECKPOINT`;
  } finally {
    await store.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`pg-seed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

/**
 * `node dist/bench/pg-disk.js [--messages 4000] [--size 4096] [--recipients 10]`: bytes on disk per
 * message in the PostgreSQL store (issue 15, docs/scaling.md "Measured capacity"). Starts a private
 * PostgreSQL (test/helpers/postgres.ts), applies the schema, and delivers through
 * PostgresMailStore.deliver as LMTP does (a ~230-octet trace header per delivery as the head,
 * DeliverOptions.bodyOffset, the rest the shared body), twice:
 *   - one recipient per message, every body distinct (`--messages` deliveries);
 *   - the same number of deliveries as LMTP transactions to `--recipients` recipients (one body
 *     per transaction, R-X18).
 * After each, CHECKPOINT and pg_total_relation_size (heap, TOAST and indexes) of every table,
 * growth divided by the deliveries. No VACUUM: the figures are those of a freshly written table.
 */
import { randomBytes } from 'node:crypto';
import { connectPostgres, type Sql } from '../src/storage/postgres/client.js';
import { migrate } from '../src/storage/postgres/migrate.js';
import { PostgresMailStore } from '../src/storage/postgres/pg-store.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { parseArgs } from './args.js';

const TABLES = ['maildrops', 'bodies', 'body_chunks', 'messages', 'maildrop_claims'];

async function sizes(sql: Sql): Promise<Map<string, number>> {
  await sql`CHECKPOINT`;
  const rows = await sql<{ name: string; bytes: number }[]>`
    SELECT relname AS name, pg_total_relation_size(oid)::float8 AS bytes FROM pg_class WHERE relname = ANY(${TABLES}) AND relkind = 'r'`;
  return new Map(rows.map((r) => [r.name, r.bytes]));
}

function trace(i: number): Buffer {
  return Buffer.from(`Return-Path: <sender${i}@example.org>\r\nReceived: from mx.example.org (mx.example.org [192.0.2.1])\r\n\tby pop.example.net (poplar) with LMTP id ${randomBytes(8).toString('hex')}\r\n\tfor <user${i}@example.net>; Thu, 3 Dec 2026 19:00:00 +0000\r\n`);
}

/** A message body of about `size` octets: a header block and base64-like lines (incompressible, as mail mostly is). */
function body(size: number): Buffer {
  const head = 'From: a@example.org\r\nTo: b@example.net\r\nSubject: capacity\r\n\r\n';
  const lines: string[] = [head];
  let n = head.length;
  while (n < size) {
    const line = `${randomBytes(57).toString('base64')}\r\n`;
    lines.push(line);
    n += line.length;
  }
  return Buffer.from(lines.join(''));
}

async function run(sql: Sql, store: PostgresMailStore, label: string, messages: number, size: number, recipients: number): Promise<void> {
  const before = await sizes(sql);
  let octets = 0;
  for (let i = 0; i < messages; i += recipients) {
    const shared = body(size);
    for (let r = 0; r < recipients && i + r < messages; r++) {
      const t = trace(r);
      const res = await store.deliver(`${label}${r}`, Buffer.concat([t, shared]), { bodyOffset: t.length });
      octets += res.size;
    }
  }
  const after = await sizes(sql);
  const per = (name: string): number => ((after.get(name) ?? 0) - (before.get(name) ?? 0)) / messages;
  const total = TABLES.reduce((s, t) => s + per(t), 0);
  process.stdout.write(`${label}: ${messages} deliveries of ${Math.round(octets / messages)} octets, ${recipients} recipient(s) per body: ` +
    `${Math.round(total)} B on disk per message (${TABLES.filter((t) => per(t) !== 0).map((t) => `${t} ${Math.round(per(t))}`).join(', ')})\n`);
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const messages = a.num('messages', 4000);
  const size = a.num('size', 4096);
  const recipients = a.num('recipients', 10);
  const pg = await startPostgres();
  try {
    const sql = connectPostgres({ url: await pg.createDatabase(), poolSize: 2, statementTimeout: 0 });
    await migrate(sql);
    const store = new PostgresMailStore({ sql });
    await run(sql, store, 'single', messages, size, 1);
    await run(sql, store, 'shared', messages, size, recipients);
    await store.close();
    await sql.end({ timeout: 5 });
  } finally {
    await pg.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`pg-disk: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

/**
 * The one MailStore conformance suite on PostgreSQL (issue 15, R-X17): a real server from Debian
 * (test/helpers/postgres.ts), one per file, a migrated database per test.
 */
import { after, before, describe } from 'node:test';
import { connectPostgres } from '../../src/storage/postgres/client.js';
import { migrate } from '../../src/storage/postgres/migrate.js';
import { PostgresMailStore } from '../../src/storage/postgres/pg-store.js';
import { needPostgres, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { runMailStoreConformance } from './conformance.js';

describe('PostgreSQL store', { skip: needPostgres() }, () => {
  let pg: PostgresServer;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
  });

  runMailStoreConformance('postgres', async () => {
    const sql = connectPostgres({ url: await pg.createDatabase(), poolSize: 4 });
    await migrate(sql);
    const store = new PostgresMailStore({ sql, ownsPool: true });
    await store.ready();
    return { store, cleanup: () => store.close() };
  });
});

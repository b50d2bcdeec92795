/**
 * The directory suite (directory-suite.ts) on both directories: the passwd-file and PostgreSQL
 * (R-X17; a real PostgreSQL, test/helpers/postgres.ts: one server for the file, a database per test).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { PasswdFile } from '../../src/auth/passwd-file.js';
import { PostgresDirectory } from '../../src/auth/postgres-directory.js';
import { needPostgres, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { endPools, migratedDatabase } from '../helpers/pg-pool.js';
import { runDirectorySuite } from './directory-suite.js';

const root = mkdtempSync(join(tmpdir(), 'poplar-dirsuite-'));
const skip = needPostgres();
let pg: PostgresServer | undefined;
before(async () => {
  if (skip === false) pg = await startPostgres();
});
after(async () => {
  await endPools();
  await pg?.stop();
  rmSync(root, { recursive: true, force: true });
});

let n = 0;
runDirectorySuite('passwd-file', async () => new PasswdFile(join(root, `users-${++n}`), { statIntervalMs: 0 }));

runDirectorySuite('postgres', async () => new PostgresDirectory((await migratedDatabase(pg!)).sql), { skip });

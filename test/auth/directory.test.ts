/**
 * The directory suite (directory-suite.ts) on both directories: the passwd-file and PostgreSQL
 * (R-X17; a real PostgreSQL, test/helpers/postgres.ts: one server for the file, a database per test).
 */
import { join } from 'node:path';
import { PasswdFile } from '../../src/auth/passwd-file.js';
import { PostgresDirectory } from '../../src/auth/postgres-directory.js';
import { migratedDatabase, postgresForFile } from '../helpers/pg-pool.js';
import { runDirectorySuite } from './directory-suite.js';

const { root, skip, server } = postgresForFile('poplar-dirsuite-');

let n = 0;
runDirectorySuite('passwd-file', async () => new PasswdFile(join(root, `users-${++n}`), { statIntervalMs: 0 }));

runDirectorySuite('postgres', async () => new PostgresDirectory((await migratedDatabase(server())).sql), { skip });

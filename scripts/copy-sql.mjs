#!/usr/bin/env node
// Copies the SQL migrations (src/storage/postgres/migrations/*.sql) beside the compiled
// migrate.js, which reads them from there: `node scripts/copy-sql.mjs dist/src` or `lib`.
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const out = process.argv[2];
if (out === undefined) throw new Error('usage: copy-sql.mjs <output root, e.g. dist/src>');
const from = 'src/storage/postgres/migrations';
const to = join(out, 'storage/postgres/migrations');
mkdirSync(to, { recursive: true });
for (const f of readdirSync(from)) if (f.endsWith('.sql')) cpSync(join(from, f), join(to, f));

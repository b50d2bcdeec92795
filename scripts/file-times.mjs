// A test reporter for run-tests.mjs: adds up the durations of each file's top-level tests, records
// them in dist/.test-times.json (run-tests.mjs starts the slowest files first next time, see
// scripts/test-services.mjs) and, with POPLAR_TEST_TIMES=1, prints the slowest files last.
import { readFileSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { TIMES_FILE } from './test-services.mjs';

export default async function* fileTimes(source) {
  const perFile = new Map();
  for await (const event of source) {
    if ((event.type === 'test:pass' || event.type === 'test:fail') && event.data.nesting === 0) {
      const file = event.data.file === undefined ? '?' : relative(process.cwd(), event.data.file);
      perFile.set(file, (perFile.get(file) ?? 0) + (event.data.details?.duration_ms ?? 0));
    }
  }
  let record = {};
  try {
    record = JSON.parse(readFileSync(TIMES_FILE, 'utf8'));
  } catch {
    // First run, or a record from an older build: start a new one.
  }
  for (const [file, ms] of perFile) if (file !== '?') record[file] = Math.round(ms);
  try {
    writeFileSync(TIMES_FILE, `${JSON.stringify(record, null, 1)}\n`);
  } catch {
    // A read-only checkout still runs its tests; only the next run's order is the default one.
  }
  if (!process.env.POPLAR_TEST_TIMES) return;
  const rows = [...perFile].sort((a, b) => b[1] - a[1]).slice(0, 15);
  yield 'slowest test files (sum of top-level test durations):\n';
  for (const [file, ms] of rows) yield `${(ms / 1000).toFixed(1).padStart(7)} s  ${file}\n`;
}

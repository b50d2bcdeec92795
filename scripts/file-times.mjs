// A test reporter for run-tests.mjs, one per test file run: counts the file's tests and writes
// them as one JSON object to its destination (a file the runner reads when the run has ended):
// { tests, pass, fail, skipped, todo, ms } where `ms` is the sum of the top-level tests' durations.
// Suites (describe) are not counted as tests, as in Node's own summary; a skipped or todo test
// counts as passed too, as Node counts it.
export default async function* fileTimes(source) {
  const counts = { tests: 0, pass: 0, fail: 0, skipped: 0, todo: 0, ms: 0 };
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const data = event.data;
    if (data.nesting === 0) counts.ms += data.details?.duration_ms ?? 0;
    if (data.details?.type === 'suite') continue;
    counts.tests++;
    if (event.type === 'test:pass') counts.pass++;
    else counts.fail++;
    if (data.skip !== undefined && data.skip !== false) counts.skipped++;
    if (data.todo !== undefined && data.todo !== false) counts.todo++;
  }
  counts.ms = Math.round(counts.ms);
  yield `${JSON.stringify(counts)}\n`;
}

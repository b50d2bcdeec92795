// A test reporter for run-tests.mjs (POPLAR_TEST_TIMES=1): adds up the durations of each file's
// top-level tests and prints the slowest files last, to find what makes the suite slow.
export default async function* fileTimes(source) {
  const perFile = new Map();
  for await (const event of source) {
    if ((event.type === 'test:pass' || event.type === 'test:fail') && event.data.nesting === 0) {
      const file = event.data.file ?? '?';
      perFile.set(file, (perFile.get(file) ?? 0) + (event.data.details?.duration_ms ?? 0));
    }
  }
  const rows = [...perFile].sort((a, b) => b[1] - a[1]).slice(0, 15);
  yield 'slowest test files (sum of top-level test durations):\n';
  for (const [file, ms] of rows) yield `${(ms / 1000).toFixed(1).padStart(7)} s  ${file.replace(process.cwd() + '/', '')}\n`;
}

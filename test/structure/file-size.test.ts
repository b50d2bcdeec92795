/**
 * Issue #13, done-when: no source file of src/ over 450 lines, so each stays readable in one
 * sitting. Every src/**\/*.ts file (tests beside the code included) is counted; the test names
 * each file over the bound with its line count.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { it } from 'node:test';
import { SRC, sourceFiles } from './source-files.js';

const MAX_LINES = 450;

/** Lines as `wc -l` counts them: a last line without its LF counts too. */
export function lineCount(text: string): number {
  if (text === '') return 0;
  const lf = text.split('\n').length - 1;
  return text.endsWith('\n') ? lf : lf + 1;
}

it(`issue #13: no file in src/ has more than ${MAX_LINES} lines`, () => {
  const files = sourceFiles(SRC);
  assert.ok(files.length > 100, `expected the whole src/ tree, found ${files.length} files`);
  const over = files
    .map((f) => ({ file: relative(SRC, f), lines: lineCount(readFileSync(f, 'utf8')) }))
    .filter((f) => f.lines > MAX_LINES)
    .map((f) => `src/${f.file}: ${f.lines} lines`);
  assert.deepEqual(over, [], `split these files:\n${over.join('\n')}`);
});

it('issue #13: the line count is wc -l\'s', () => {
  assert.equal(lineCount(''), 0);
  assert.equal(lineCount('a\n'), 1);
  assert.equal(lineCount('a\nb'), 2);
  assert.equal(lineCount('a\n'.repeat(451)), 451);
});

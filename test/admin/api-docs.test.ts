import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { renderApiDoc } from '../../src/admin/docgen.js';

describe('docs/api.md', () => {
  it('R-X21 matches what src/admin/docgen.ts generates from the OpenAPI document (run npm run docs:api)', async () => {
    const committed = readFileSync(new URL('../../../docs/api.md', import.meta.url), 'utf8');
    assert.equal(committed, await renderApiDoc());
  });
});

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { renderConfigDoc } from '../../src/config/docgen.js';

describe('docs/configuration.md', () => {
  it('matches what src/config/docgen.ts generates from the schema (run npm run docs:config)', () => {
    const committed = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
    assert.equal(committed, renderConfigDoc());
  });

  it('documents every key with its requirement ids', () => {
    const doc = renderConfigDoc();
    assert.match(doc, /\| `pop3\.max_command_length` \| integer \| `512` \| 40–1024 \| R-S2 \|/);
    assert.match(doc, /\| `pop3\.timeout_authenticated` \| integer \| `1800` \| ≥ 600 \| R-S8 \|/);
    assert.match(doc, /^max_command_length = 512$/m);
  });
});

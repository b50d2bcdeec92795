/**
 * protocol/ is pure (DESIGN.md, docs/architecture.md): it holds no mutable module state. Pools,
 * registries and caches are objects their owners create and pass in (chunk-pool.ts). Checked on
 * the sources: no module-level collection, pool or array literal in any protocol/ file.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const DIR = fileURLToPath(new URL('../../../src/protocol/', import.meta.url));
/** A top-level declaration that makes a container of state: a Map, Set, WeakMap, WeakSet, a pool or an empty array. */
const STATE = /^(export )?(const|let|var) \w+(: [^=]+)? = (new (Map|Set|WeakMap|WeakSet|ChunkPool)\b|\[\])/;

describe('protocol/ module state', () => {
  it('R-X9 regression: protocol/ holds no module-level pool or registry (chunk-pool.ts held both)', () => {
    const found: string[] = [];
    for (const name of readdirSync(DIR).filter((n) => n.endsWith('.ts') && !n.endsWith('.test.ts'))) {
      readFileSync(join(DIR, name), 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (STATE.test(line)) found.push(`${name}:${i + 1}: ${line}`);
        });
    }
    assert.deepEqual(found, []);
  });
});

/** docs/conformance.md must match the tests, and the core server's requirements must be tested. */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, conformanceMap, renderConformance } from './conformance-map.js';

/** The requirements the core server (issue #2) implements; each needs at least one test. */
const CORE = [
  'R-K1', 'R-K3', 'R-K4', 'R-K5', 'R-K6', 'R-K7', 'R-K8', 'R-S1', 'R-S2', 'R-S3', 'R-S4', 'R-S6', 'R-S7', 'R-S8',
  'R-S10', 'R-S11', 'R-S12', 'R-S13', 'R-S15', 'R-S19', 'R-X1', 'R-X2', 'R-X7', 'R-X8',
];

it('docs/conformance.md is up to date with the test titles (run npm run docs:conformance)', () => {
  assert.equal(readFileSync(join(ROOT, 'docs/conformance.md'), 'utf8'), renderConformance());
});

/** The requirements of mail in and mailbox policy (issue #4). */
const DELIVERY_AND_POLICY = ['R-S16', 'R-S17', 'R-S18', 'R-X6', 'R-X10', 'R-X11', 'R-X15'];

it('every delivery and mailbox-policy requirement id has at least one test named with it', () => {
  const map = conformanceMap();
  assert.deepEqual(DELIVERY_AND_POLICY.filter((id) => (map.get(id)?.length ?? 0) === 0), []);
});

it('every core requirement id has at least one test named with it', () => {
  const map = conformanceMap();
  const missing = CORE.filter((id) => (map.get(id)?.length ?? 0) === 0);
  assert.deepEqual(missing, []);
});

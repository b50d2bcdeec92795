/** docs/conformance.md must match the tests, and every implemented requirement must be tested. */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, conformanceMap, renderConformance } from './conformance-map.js';

/** The requirement ids each capability implements; each needs at least one test named with it. */
const IMPLEMENTED: Record<string, readonly string[]> = {
  'core server (#2)': [
    'R-K1', 'R-K3', 'R-K4', 'R-K5', 'R-K6', 'R-K7', 'R-K8', 'R-S1', 'R-S2', 'R-S3', 'R-S4', 'R-S6', 'R-S7', 'R-S8',
    'R-S10', 'R-S11', 'R-S12', 'R-S13', 'R-S15', 'R-S19', 'R-X1', 'R-X2', 'R-X7', 'R-X8',
  ],
  'TLS and authentication (#3)': ['R-K2', 'R-K9', 'R-S5', 'R-S9', 'R-S14', 'R-X3', 'R-X4', 'R-X5', 'R-X14'],
  'mail in and mailbox policy (#4)': ['R-S16', 'R-S17', 'R-S18', 'R-X6', 'R-X10', 'R-X11', 'R-X15'],
  'hardening and operations (#5)': ['R-S20', 'R-X9', 'R-X10', 'R-X12', 'R-X13'],
  'Kerberos GSSAPI and LDAP users (#16)': ['R-X19', 'R-X20'],
  'single-instance bodies on PostgreSQL (#15)': ['R-X18'],
  'admin API and console (#17)': ['R-X21'],
};

it('docs/conformance.md is up to date with the test titles (run npm run docs:conformance)', () => {
  assert.equal(readFileSync(join(ROOT, 'docs/conformance.md'), 'utf8'), renderConformance());
});

it('every implemented requirement id has at least one test named with it', () => {
  const map = conformanceMap();
  const missing = Object.entries(IMPLEMENTED).flatMap(([capability, ids]) =>
    ids.filter((id) => (map.get(id)?.length ?? 0) === 0).map((id) => `${capability}: ${id}`),
  );
  assert.deepEqual(missing, []);
});

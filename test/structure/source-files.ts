/** The files test/structure reads: every src/**\/*.ts of the repository (tests beside the code included). */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's src/ (the tests run as dist/test/structure/*.test.js). */
export const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

export function sourceFiles(dir: string = SRC, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sourceFiles(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

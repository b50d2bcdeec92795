#!/usr/bin/env node
// Builds the admin web console (R-X21) into the folder given (dist/src/admin/console for the
// tests, lib/admin/console for the package): esbuild bundles src/admin/console/app.js with
// preact, htm and uPlot into app.js, app.css (with uPlot's CSS) and copies index.html and favicon.svg. Nothing is
// fetched at run time: no CDN, no external fonts.
import { build } from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const out = process.argv[2];
if (out === undefined) {
  process.stderr.write('usage: node scripts/build-console.mjs <output folder>\n');
  process.exit(2);
}
const src = fileURLToPath(new URL('../src/admin/console/', import.meta.url));
await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await build({
  entryPoints: [join(src, 'app.js'), join(src, 'app.css')],
  outdir: out,
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  legalComments: 'eof',
  logLevel: 'warning',
});
for (const file of ['index.html', 'favicon.svg']) await copyFile(join(src, file), join(out, file));

/**
 * Issue #13, layers import one way: the folder graph of src/ has no cycle. Every src/**\/*.ts file
 * (tests beside the code included) is read; each relative import specifier (`import`, `import type`,
 * `export … from`, dynamic `import('…')`) is an edge from the file's top-level folder of src/ to the
 * target's (a file directly in src/, such as server.ts, is a node of its own). Any cycle in that
 * graph fails the test, named folder by folder with one file import per step.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { it } from 'node:test';
import { SRC, sourceFiles } from './source-files.js';



/** Relative specifiers of every static, type-only, re-export and dynamic import in `text`. */
function relativeImports(text: string): string[] {
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[^'";]*?\sfrom\s*['"](\.{1,2}\/[^'"]+)['"]/g,
    /\bimport\s*['"](\.{1,2}\/[^'"]+)['"]/g,
    /\bimport\s*\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) found.push(m[1]!);
  return found;
}

/** The node of a file: its top-level folder under src/, or the file name for src/*.ts. */
function nodeOf(file: string): string {
  const rel = relative(SRC, file).split(/[\\/]/);
  return rel.length === 1 ? rel[0]! : `${rel[0]}/`;
}

interface Edge {
  from: string;
  to: string;
}

/** Folder edges of src/, each with the first file import that makes it. */
function folderGraph(): Map<string, Map<string, Edge>> {
  const graph = new Map<string, Map<string, Edge>>();
  for (const file of sourceFiles(SRC)) {
    const from = nodeOf(file);
    for (const spec of relativeImports(readFileSync(file, 'utf8'))) {
      const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
      if (relative(SRC, target).startsWith('..')) continue;
      const to = nodeOf(target);
      if (to === from) continue;
      const edges = graph.get(from) ?? new Map<string, Edge>();
      graph.set(from, edges);
      if (!edges.has(to)) edges.set(to, { from: relative(SRC, file), to: spec });
    }
  }
  return graph;
}

/** One cycle of `graph` as a list of nodes (first node repeated at the end), or undefined. */
function findCycle(graph: Map<string, Map<string, Edge>>): string[] | undefined {
  const done = new Set<string>();
  const path: string[] = [];
  const onPath = new Set<string>();
  const visit = (node: string): string[] | undefined => {
    if (onPath.has(node)) return [...path.slice(path.indexOf(node)), node];
    if (done.has(node)) return undefined;
    onPath.add(node);
    path.push(node);
    for (const next of [...(graph.get(node)?.keys() ?? [])].sort()) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    onPath.delete(node);
    done.add(node);
    return undefined;
  };
  for (const node of [...graph.keys()].sort()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

it('issue #13 layers: the folder-level import graph of src/ has no cycle (type imports counted)', () => {
  const graph = folderGraph();
  assert.ok(graph.size > 5, `read the import graph of ${SRC}`);
  const cycle = findCycle(graph);
  if (cycle) {
    const steps = cycle.slice(0, -1).map((node, i) => {
      const edge = graph.get(node)!.get(cycle[i + 1]!)!;
      return `  ${node} -> ${cycle[i + 1]}   (${edge.from} imports '${edge.to}')`;
    });
    assert.fail(`folder import cycle: ${cycle.join(' -> ')}\n${steps.join('\n')}`);
  }
});

it('issue #13 layers: the import scanner sees type-only, re-export, multi-line and dynamic imports', () => {
  const text = [
    "import type { A } from '../a/x.js';",
    "import {\n  B,\n  C,\n} from './b.js';",
    "export { D } from '../d/y.js';",
    "const m = await import('../e/z.js');",
    "import '../f/side.js';",
    "import { readFile } from 'node:fs';",
  ].join('\n');
  assert.deepEqual(relativeImports(text).sort(), ['../a/x.js', '../d/y.js', '../e/z.js', '../f/side.js', './b.js']);
  const g = new Map([
    ['a/', new Map([['b/', { from: 'a/x.ts', to: '../b/y.js' }]])],
    ['b/', new Map([['a/', { from: 'b/y.ts', to: '../a/x.js' }]])],
  ]);
  assert.deepEqual(findCycle(g), ['a/', 'b/', 'a/']);
});

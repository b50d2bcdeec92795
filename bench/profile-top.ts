/**
 * `node dist/bench/profile-top.js FILE.cpuprofile [N]`: the top N functions of a V8 CPU profile
 * (from `node --cpu-prof`) by self time, and by total (inclusive) time, with their share of the
 * busy samples (all but "(idle)", the event loop waiting). "(garbage collector)" is GC.
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

const [file, nArg] = process.argv.slice(2);
if (file === undefined) {
  process.stderr.write('usage: node dist/bench/profile-top.js FILE.cpuprofile [N]\n');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; startTime: number; endTime: number };
const n = Number(nArg ?? 15);
const byId = new Map(profile.nodes.map((x) => [x.id, x]));
const label = (x: Node): string => {
  const f = x.callFrame;
  const where = f.url === '' ? '' : ` ${f.url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/').replace(/^node:/, 'node:')}:${f.lineNumber + 1}`;
  return `${f.functionName || '(anonymous)'}${where}`;
};

const self = new Map<string, number>();
const total = new Map<string, number>();
let all = 0;
/** Inclusive hits of the subtree; a function is counted once per stack even if recursive. */
function walk(x: Node, onStack: Set<string>): number {
  const name = label(x);
  const own = x.hitCount ?? 0;
  all += own;
  self.set(name, (self.get(name) ?? 0) + own);
  const entered = !onStack.has(name);
  if (entered) onStack.add(name);
  let sum = own;
  for (const c of x.children ?? []) sum += walk(byId.get(c)!, onStack);
  if (entered) {
    onStack.delete(name);
    total.set(name, (total.get(name) ?? 0) + sum);
  }
  return sum;
}
walk(profile.nodes[0]!, new Set());

const ms = (profile.endTime - profile.startTime) / 1000;
const busy = all - (self.get('(idle)') ?? 0);
self.delete('(idle)');
total.delete('(idle)');
total.delete('(root)');
const show = (title: string, m: Map<string, number>): void => {
  process.stdout.write(`${title}\n`);
  for (const [name, hits] of [...m].sort((p, q) => q[1] - p[1]).slice(0, n)) {
    process.stdout.write(`  ${((100 * hits) / busy).toFixed(1).padStart(5)}%  ${name}\n`);
  }
};
process.stdout.write(`${file}: ${all} samples over ${ms.toFixed(0)} ms, ${busy} busy (shares below are of these)\n`);
show('self time:', self);
show('total time (inclusive):', total);

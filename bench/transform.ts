/**
 * Micro-benchmark of the RETR body transform (CRLF + dot-stuffing) in CPU-s per GB of stored
 * message, over bench-like messages (bench/messages.ts: CRLF, LF and mixed line ends, dot lines).
 * `node dist/bench/transform.js [--mb 64] [--chunk 262144] [--mode bench|crlf|lf|cr|long]`. "line loop"
 * is stuffBody's per-line path (what TOP uses, and what RETR used before the WebAssembly
 * transform). Output chunks are given back to their pool as the socket does once it has sent them.
 * "its copies alone" copies each chunk in and out as wasmTransform does around the module: the
 * part of its figure that the module does not decide.
 * Modes: `bench` the messages as bench/messages.ts makes them; `crlf` the same in CRLF form (only
 * the dot lines change); `lf` the same with LF line ends only; `cr` with bare CRs only; `long` CRLF lines
 * ~50 times as long (only every 50th line end kept).
 */
import { parseArgs } from './args.js';
import { makeMessage, toCrlf } from './messages.js';
import { jsTransform, LINE_START, TRANSFORM_OUT_CHUNK, wasmTransform, type LineState } from '../src/protocol/body-transform.js';
import { ChunkPool, releaseChunk } from '../src/protocol/chunk-pool.js';
import { stuffBody } from '../src/protocol/dot-stuffing.js';

const a = parseArgs(process.argv.slice(2));
const mb = a.num('mb', 64);
const chunk = a.num('chunk', 256 * 1024);
const size = a.num('size', 1 << 20);
const mode = a.str('mode', 'bench');

/** The bench message in the form `mode` asks for. */
function shape(m: Buffer): Buffer {
  if (mode === 'bench') return m;
  const crlf = toCrlf(m);
  if (mode === 'crlf') return crlf;
  const text = crlf.toString('latin1');
  if (mode === 'lf') return Buffer.from(text.replaceAll('\r\n', '\n'), 'latin1');
  if (mode === 'cr') return Buffer.from(text.replaceAll('\r\n', '\r'), 'latin1');
  if (mode === 'long') {
    let k = 0;
    return Buffer.from(text.replace(/\r\n/g, () => (++k % 50 === 0 ? '\r\n' : ' ')), 'latin1');
  }
  throw new Error(`--mode: bench, crlf, lf, cr or long, not ${mode}`);
}

const messages: Buffer[][] = [];
let total = 0;
for (let i = 0; total < mb * 1e6; i++) {
  const m = shape(makeMessage(1, `retr5mb-u0-${i}`, size));
  const parts: Buffer[] = [];
  for (let at = 0; at < m.length; at += chunk) parts.push(m.subarray(at, at + chunk));
  messages.push(parts);
  total += m.length;
}

function cpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function measure(name: string, run: (parts: Buffer[]) => Promise<number> | number): Promise<void> {
  let best = Infinity;
  let out = 0;
  for (let rep = 0; rep < 5; rep++) {
    const t0 = cpu();
    out = 0;
    for (const parts of messages) out += await run(parts);
    best = Math.min(best, cpu() - t0);
  }
  console.log(`${name.padEnd(28)} ${(best / (total / 1e9)).toFixed(3)} CPU-s/GB  (${out} octets out)`);
}

async function* from(parts: Buffer[]): AsyncGenerator<Buffer> {
  yield* parts;
}

/** The pool session/output.ts gives the transform (its own, as there). */
const pool = new ChunkPool(TRANSFORM_OUT_CHUNK, 16);

function direct(t: (b: Buffer, s: LineState, pool: ChunkPool) => { out: Buffer; state: LineState }): (parts: Buffer[]) => number {
  return (parts) => {
    let s: LineState = LINE_START;
    let n = 0;
    for (const p of parts) {
      const r = t(p, s, pool);
      s = r.state;
      n += r.out.length;
      releaseChunk(r.out);
    }
    return n;
  };
}

console.log(`${mode}: ${(total / 1e6).toFixed(0)} MB in ${messages.length} messages of ~${size} octets, chunks of ${chunk}`);
await measure('line loop (stuffBody, TOP)', async (parts) => {
  let n = 0;
  for await (const b of stuffBody(from(parts), { topLines: Number.MAX_SAFE_INTEGER })) n += b.length;
  return n;
});
await measure('stuffBody RETR', async (parts) => {
  let n = 0;
  for await (const b of stuffBody(from(parts), {}, pool)) {
    n += b.length;
    releaseChunk(b);
  }
  return n;
});
await measure('wasmTransform', direct(wasmTransform));
// What wasmTransform costs besides the module: each window copied into its memory and out again.
const window = new Uint8Array(chunk);
const copyOut = Buffer.allocUnsafeSlow(chunk);
await measure('  its copies alone', (parts) => {
  let n = 0;
  for (const p of parts) {
    window.set(p, 0);
    copyOut.set(window.subarray(0, p.length), 0);
    n += p.length;
  }
  return n;
});
await measure('jsTransform', direct(jsTransform));

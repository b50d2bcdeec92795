/**
 * The hot loop of RETR (R-S19, R-K8): one chunk of a stored message in, its wire form out — every
 * line end (CRLF, bare LF, bare CR) sent as CRLF and a "." starting a line doubled — with the one
 * state the next chunk needs carried between calls. ./dot-stuffing.ts drives it and adds the rest
 * of the reply (TOP, workarounds, the last line end, the terminator).
 *
 * Why WebAssembly: a stored message has a line end every ~50 octets, so anything that calls from
 * JS into native code per line (Buffer.indexOf, copy, subarray) costs ~1 µs per line, ~2 CPU-s per
 * GB served; a JS byte loop costs about as much. The loop below, in a 1 KiB hand-assembled module,
 * tests 16 octets at a time for CR and LF (SIMD) and copies them on when there is none, looking
 * for a "." only where a line starts (so the dots inside sentences cost nothing), so the
 * per-octet work is a few machine instructions and the per-chunk work two memcpy. A chunk that needs
 * no change at all (CRLF lines, no line starting with ".") is passed on as it is, without a copy.
 *
 * One module instance serves the whole process (calls are synchronous and never overlap); its
 * memory is a fixed 832 KiB: an input window of WINDOW octets and an output window of 2×WINDOW+16,
 * so memory per session is bounded whatever the message size. Where WebAssembly is unavailable
 * (node --jitless) `jsTransform`, the same loop in JS, is used; the property tests compare both with
 * a plain reference implementation over random inputs cut at random chunk boundaries.
 */
import { ChunkPool } from './chunk-pool.js';

/** State between chunks: in the middle of a line. */
export const MID_LINE = 0;
/** State between chunks: at the start of a line (the message start, or after a LF). */
export const LINE_START = 1;
/** State between chunks: at the start of a line right after a CR, already sent as CRLF; an LF
 * next is that CR's partner and is dropped. */
export const AFTER_CR = 2;
export type LineState = typeof MID_LINE | typeof LINE_START | typeof AFTER_CR;

/** Input octets per call into the module. */
const WINDOW = 256 * 1024;
const OUT_BASE = WINDOW;
/** Worst case output of WINDOW input octets (every octet a CR, or a "." after a line end), plus
 * the 16 octets a SIMD store may write past the last valid one. */
const OUT_SIZE = 2 * WINDOW + 16;
const PAGES = Math.ceil((OUT_BASE + OUT_SIZE) / 65536);

/** The transform of one chunk; `state` is updated for the next chunk. */
export interface ChunkResult {
  /** The wire octets: `input` itself when nothing had to change. */
  readonly out: Buffer;
  readonly state: LineState;
}

/**
 * The reference semantics, kept as a plain JS loop: the fallback where WebAssembly is not
 * available, and what the tests compare the module with. `state` must not be AFTER_CR when
 * `input` starts with an LF (transformChunk drops that LF first).
 */
export function jsTransform(input: Buffer, state: LineState): ChunkResult {
  const n = input.length;
  const dst = Buffer.allocUnsafe(2 * n);
  let o = 0;
  let s: number = state;
  for (let i = 0; i < n; i++) {
    const b = input[i]!;
    if (b === 0x0a) {
      if (s === AFTER_CR) {
        s = LINE_START; // the LF of a CRLF: already sent
        continue;
      }
      dst[o++] = 0x0d;
      dst[o++] = 0x0a;
      s = LINE_START;
    } else if (b === 0x0d) {
      dst[o++] = 0x0d;
      dst[o++] = 0x0a;
      s = AFTER_CR;
    } else {
      if (b === 0x2e && s !== MID_LINE) dst[o++] = 0x2e;
      dst[o++] = b;
      s = MID_LINE;
    }
  }
  // Every change adds one octet (a bare LF or CR becomes two, a dot is doubled; a CR ending the
  // chunk counts as bare): the same length means the same octets.
  return { out: o === n ? input : dst.subarray(0, o), state: s as LineState };
}

// --- the WebAssembly module ---------------------------------------------------------------------
// (func $t (param $i i32) (param $n i32) (param $o i32) (param $s i32) (result i32))
// reads n octets at i, writes from o, starts in state s; returns the length written. The state
// after the call is a function of the last input octet (wasmTransform works it out), so the loop
// keeps none. First, at a line start (s ≠ MID_LINE): an LF right after a CR (s = AFTER_CR) is
// dropped, and a "." is doubled. Then, while input remains: load 16 octets, store them at o, and
// find the first CR or LF among them (i8x16.eq ×2, or, bitmask, ctz; octets past the end masked
// off). None: skip all 16 (or the rest). One at k: skip k, write CRLF, skip the CR, its LF if one
// follows, and double a "." that starts the next line. Loads may read up to 15 octets past the
// input and stores write up to 15 past the output: the memory layout leaves room for both.
// Locals beyond the params: 4 $end, 5 $o0, 6 $m, 7 $rem (i32); 8 $lf, 9 $cr, 10 $v (v128).

const I32 = 0x7f;
const V128 = 0x7b;
const op = {
  block: 0x02, loop: 0x03, br: 0x0c, brIf: 0x0d, end: 0x0b, void: 0x40, select: 0x1b,
  get: 0x20, set: 0x21, tee: 0x22,
  const: 0x41, eqz: 0x45, ne: 0x47, ltU: 0x49, geU: 0x4f,
  ctz: 0x68, add: 0x6a, sub: 0x6b, and: 0x71, or: 0x72, shl: 0x74,
  load8u: 0x2d, store8: 0x3a, store16: 0x3b,
  simd: 0xfd,
} as const;
const SIMD = { load: 0x00, store: 0x0b, splat: 0x0f, eq: 0x23, or: 0x50, bitmask: 0x64 } as const;
const MEM0 = [0x00, 0x00]; // memarg: alignment 1 octet, offset 0
const L = { i: 0, n: 1, o: 2, s: 3, end: 4, o0: 5, m: 6, rem: 7, lf: 8, cr: 9, v: 10 } as const;

/** i32.const with its signed LEB128 immediate (the constants here are non-negative). */
function c(v: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = v & 0x7f;
    v >>>= 7;
    if (v === 0 && (byte & 0x40) === 0) return [op.const, ...out, byte];
    out.push(byte | 0x80);
  }
}
const get = (l: number): number[] => [op.get, l];
const set = (l: number): number[] => [op.set, l];
const simd = (code: number): number[] => [op.simd, code];
/** $l += k */
const bump = (l: number, k: number): number[] => [...get(l), ...c(k), op.add, ...set(l)];
/** Branches out of the enclosing block (depth 0) unless the octet at $i is `octet` (and i < end). */
const unlessAtI = (octet: number): number[] => [
  ...get(L.i), ...get(L.end), op.geU, op.brIf, 0,
  ...get(L.i), op.load8u, ...MEM0, ...c(octet), op.ne, op.brIf, 0,
];
/** Writes a second "." when the octet at $i (a line start) is one. */
const doubleDot: number[] = [
  op.block, op.void,
  ...unlessAtI(0x2e),
  ...get(L.o), ...c(0x2e), op.store8, ...MEM0, ...bump(L.o, 1),
  op.end,
];

// Branch depths count enclosing blocks from the innermost (0) outwards.
const body: number[] = [
  ...get(L.o), ...set(L.o0),
  ...get(L.i), ...get(L.n), op.add, ...set(L.end),
  op.block, op.void, // $start: a line start carried in from the previous chunk
  ...get(L.s), op.eqz, op.brIf, 0, // MID_LINE
  op.block, op.void, // $lf
  ...get(L.s), ...c(2), op.ne, op.brIf, 0, // not AFTER_CR
  ...unlessAtI(0x0a),
  ...bump(L.i, 1), // the LF of a CRLF whose CR ended the previous chunk: already sent
  op.end, // $lf
  ...doubleDot,
  op.end, // $start
  ...c(0x0a), ...simd(SIMD.splat), ...set(L.lf),
  ...c(0x0d), ...simd(SIMD.splat), ...set(L.cr),
  op.block, op.void, // $done
  op.loop, op.void, // $top
  ...get(L.i), ...get(L.end), op.geU, op.brIf, 1, // i >= end: done
  ...get(L.i), ...simd(SIMD.load), ...MEM0, ...set(L.v),
  ...get(L.o), ...get(L.v), ...simd(SIMD.store), ...MEM0,
  ...get(L.v), ...get(L.lf), ...simd(SIMD.eq),
  ...get(L.v), ...get(L.cr), ...simd(SIMD.eq), ...simd(SIMD.or),
  ...simd(SIMD.bitmask), ...set(L.m),
  ...get(L.end), ...get(L.i), op.sub, ...set(L.rem),
  op.block, op.void, // $full  [0 $full, 1 $top, 2 $done]
  ...get(L.rem), ...c(16), op.geU, op.brIf, 0,
  ...get(L.m), ...c(1), ...get(L.rem), op.shl, ...c(1), op.sub, op.and, ...set(L.m), // octets past the end
  op.end, // $full
  op.block, op.void, // $hit  [0 $hit, 1 $top, 2 $done]
  ...get(L.m), op.brIf, 0, // a CR or LF among them
  // none: min(16, rem) octets copied as they are
  ...c(16), ...get(L.rem), ...get(L.rem), ...c(16), op.geU, op.select, op.tee, L.m,
  ...get(L.i), op.add, ...set(L.i),
  ...get(L.o), ...get(L.m), op.add, ...set(L.o),
  op.br, 1,
  op.end, // $hit
  ...get(L.m), op.ctz, op.tee, L.m, ...get(L.i), op.add, ...set(L.i),
  ...get(L.o), ...get(L.m), op.add, ...set(L.o),
  ...get(L.i), op.load8u, ...MEM0, ...set(L.m), // the CR or LF
  ...get(L.o), ...c(0x0a0d), op.store16, ...MEM0, ...bump(L.o, 2), ...bump(L.i, 1),
  op.block, op.void, // $crlf  [0 $crlf, 1 $top, 2 $done]
  ...get(L.m), ...c(0x0d), op.ne, op.brIf, 0, // an LF: done with it
  ...unlessAtI(0x0a), // a bare CR
  ...bump(L.i, 1), // the LF of this CR: taken in the same step
  op.end, // $crlf
  ...doubleDot,
  op.br, 0,
  op.end, // $top
  op.end, // $done
  ...get(L.o), ...get(L.o0), op.sub,
  op.end,
];

function u32(v: number): number[] {
  const out: number[] = [];
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}
const section = (id: number, content: number[]): number[] => [id, ...u32(content.length), ...content];
const name = (s: string): number[] => [...u32(s.length), ...Buffer.from(s, 'latin1')];
const code = [...u32(2), 4, I32, 3, V128, ...body]; // locals: 4 × i32, 3 × v128

const MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // \0asm, version 1
  ...section(1, [1, 0x60, 4, I32, I32, I32, I32, 1, I32]), // type 0: (i32 ×4) -> i32
  ...section(3, [1, 0]), // function 0 has type 0
  ...section(5, [1, 0x00, ...u32(PAGES)]), // memory 0: PAGES pages, no maximum
  ...section(7, [2, ...name('t'), 0x00, 0, ...name('m'), 0x02, 0]), // exports: t (func 0), m (memory 0)
  ...section(10, [1, ...u32(code.length), ...code]),
]);

interface Module {
  t(i: number, n: number, o: number, s: number): number;
  memory: Uint8Array;
}

function instantiate(): Module | undefined {
  try {
    const inst = new WebAssembly.Instance(new WebAssembly.Module(MODULE));
    const t = inst.exports.t as (i: number, n: number, o: number, s: number) => number;
    const mem = inst.exports.m as WebAssembly.Memory;
    return { t, memory: new Uint8Array(mem.buffer) };
  } catch (e) {
    if (process.env.DEBUG_WASM) console.error(e);
    return undefined; // no WebAssembly (e.g. node --jitless): jsTransform does the work
  }
}

const wasm = instantiate();

/** Output buffers of transformed chunks of up to one window (session/output.ts gives them back). */
const outPool = new ChunkPool(OUT_SIZE, 16);

/** Whether the WebAssembly loop is in use (for the tests and the benchmark). */
export const usingWasm = wasm !== undefined;

/** The state after a chunk that ends with `last`: its line end (LF, or a CR whose LF may follow
 * in the next chunk) leaves a line start; anything else the middle of a line. */
function stateAfter(last: number): LineState {
  return last === 0x0a ? LINE_START : last === 0x0d ? AFTER_CR : MID_LINE;
}

/** The WebAssembly transform of one chunk, in windows of WINDOW octets. */
export function wasmTransform(input: Buffer, state: LineState): ChunkResult {
  if (wasm === undefined) return jsTransform(input, state);
  const mem = wasm.memory;
  const n = input.length;
  let s: number = state;
  let out: Buffer | undefined; // allocated at the first window that changes anything
  let o = 0;
  for (let at = 0; at < n; at += WINDOW) {
    const len = Math.min(WINDOW, n - at);
    mem.set(at === 0 && len === n ? input : input.subarray(at, at + len), 0);
    const outLen = wasm.t(0, len, OUT_BASE, s);
    if (len > 0) s = stateAfter(input[at + len - 1]!);
    if (out === undefined && outLen !== len) {
      const need = o + outLen + 2 * (n - at - len);
      out = need <= outPool.size ? outPool.take() : Buffer.allocUnsafe(need);
      input.copy(out, 0, 0, at); // the windows before, unchanged
    }
    // Room was made for every later window's worst case (2 × its length).
    if (out !== undefined) out.set(mem.subarray(OUT_BASE, OUT_BASE + outLen), o);
    o += outLen;
  }
  return { out: out === undefined ? input : out.subarray(0, o), state: s as LineState };
}

/**
 * One chunk of a stored message, starting in `state`, as wire octets (CRLF lines, dots doubled).
 * The result's `state` goes with the next chunk; the caller ends the message (a last line without
 * its line end, the terminator).
 */
export function transformChunk(input: Buffer, state: LineState): ChunkResult {
  if (state === AFTER_CR && input.length > 0 && input[0] === 0x0a) {
    // The LF of a CRLF split between chunks: the CR was already sent as CRLF.
    input = input.subarray(1);
    state = LINE_START;
  }
  return wasmTransform(input, state);
}

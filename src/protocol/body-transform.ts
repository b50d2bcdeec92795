/**
 * The hot loop of RETR (R-S19, R-K8): one chunk of a stored message in, its wire form out — every
 * line end (CRLF, bare LF, bare CR) sent as CRLF and a "." starting a line doubled — with the one
 * state the next chunk needs carried between calls. It is a fast path of `wireBody` in
 * ./line-rule.ts (the rule, written once); ./line-rule.test.ts checks both implementations here
 * against it over random bytes cut at random chunk boundaries. ./dot-stuffing.ts drives it and
 * adds the rest of the reply (TOP, workarounds, the last line end, the terminator).
 *
 * Why WebAssembly: a stored message has a line end every few dozen octets, so anything that calls
 * from JS into native code per line (Buffer.indexOf, copy, subarray) pays that call's cost per
 * line, and a JS byte loop pays about as much per octet (docs/benchmarks.md, "Figures behind code
 * comments", has the measured costs; bench/transform.ts measures them). The module (./body-transform-wasm.ts, 6 KiB
 * with its table) works on 16 octets at a time with SIMD: it finds the positions that need an
 * octet inserted (a CR before a bare LF, a "." before a dot line's ".") and writes each 8 octets
 * with their insertions through one swizzle from a table, without a branch per line; text where
 * insertions are rare (CRLF lines) is checked 32 octets at a time and copied on where there is
 * none, so most of what remains is the copies into and out of its memory. A chunk that needs no change at all (CRLF lines, no line starting with ".") is passed on as it
 * is, without a copy.
 *
 * One module instance serves the whole process (calls are synchronous and never overlap); its
 * memory is a fixed 832 KiB (the table, an input window of WINDOW octets, an output window of
 * 2×WINDOW+16), so memory per session is bounded whatever the message size. Where WebAssembly is
 * unavailable (node --jitless) `jsTransform`, the same rule in JS, is used.
 */
import { IN_BASE, MODULE, OUT_BASE, OUT_SIZE, PREV, WINDOW } from './body-transform-wasm.js';
import type { ChunkPool } from './chunk-pool.js';

/** State between chunks: in the middle of a line. */
export const MID_LINE = 0;
/** State between chunks: at the start of a line (the message start, or after a LF). */
export const LINE_START = 1;
/** State between chunks: at the start of a line right after a CR, already sent as CRLF; an LF
 * next is that CR's partner and is dropped. */
export const AFTER_CR = 2;
export type LineState = typeof MID_LINE | typeof LINE_START | typeof AFTER_CR;

/** The transform of one chunk; `state` is updated for the next chunk. */
export interface ChunkResult {
  /** The wire octets: `input` itself when nothing had to change. */
  readonly out: Buffer;
  readonly state: LineState;
}

/**
 * The transform as a plain JS loop: the fallback where WebAssembly is not available. `state` must
 * not be AFTER_CR when `input` starts with an LF (transformChunk drops that LF first).
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

interface Module {
  t(n: number, last: number): number;
  memory: Uint8Array;
}

function instantiate(): Module | undefined {
  try {
    const inst = new WebAssembly.Instance(new WebAssembly.Module(MODULE));
    const t = inst.exports.t as (n: number, last: number) => number;
    const mem = inst.exports.m as WebAssembly.Memory;
    return { t, memory: new Uint8Array(mem.buffer) };
  } catch (e) {
    if (process.env.DEBUG_WASM) console.error(e);
    return undefined; // no WebAssembly (e.g. node --jitless): jsTransform does the work
  }
}

/** The module instance: compiled code and a scratch memory that every call fills afresh (no value
 * in it outlives a call, and calls never overlap), so one serves the whole process. */
const wasm = instantiate();

/** Size of the buffers of a `ChunkPool` that transformed chunks are written into: the output of
 * one window at its worst. A chunk whose output needs more gets a buffer of its own. */
export const TRANSFORM_OUT_CHUNK = OUT_SIZE;

/** Whether the WebAssembly loop is in use (for the tests and the benchmark). */
export const usingWasm = wasm !== undefined;

/** The state after a chunk that ends with `last`: its line end (LF, or a CR whose LF may follow
 * in the next chunk) leaves a line start; anything else the middle of a line. */
function stateAfter(last: number): LineState {
  return last === 0x0a ? LINE_START : last === 0x0d ? AFTER_CR : MID_LINE;
}

/** The WebAssembly transform of one chunk, in windows of WINDOW octets; output that differs from
 * the input is written into a buffer of `pool` when it fits (see TRANSFORM_OUT_CHUNK). */
export function wasmTransform(input: Buffer, state: LineState, pool?: ChunkPool): ChunkResult {
  if (wasm === undefined) return jsTransform(input, state);
  if (state === AFTER_CR && input.length > 0 && input[0] === 0x0a) {
    input = input.subarray(1); // as transformChunk does
    state = LINE_START;
  }
  const mem = wasm.memory;
  const n = input.length;
  let s: number = state;
  let out: Buffer | undefined; // allocated at the first window that changes anything
  let o = 0;
  for (let at = 0; at < n; at += WINDOW) {
    const len = Math.min(WINDOW, n - at);
    // The octet before the window: at the chunk's start an LF stands for a line start (after a
    // CR too: its LF was sent with the previous chunk), 0 for the middle of a line.
    mem[PREV] = at > 0 ? input[at - 1]! : s === MID_LINE ? 0 : 0x0a;
    mem.set(at === 0 && len === n ? input : input.subarray(at, at + len), IN_BASE);
    const outLen = wasm.t(len, at + len === n ? 1 : 0);
    if (out === undefined && outLen !== len) {
      // Each later window's worst case: 2 octets per input octet, and one more at its start (the
      // LF of a CR that ended the window before, then a "." doubled).
      const rest = n - at - len;
      const need = o + outLen + 2 * rest + Math.ceil(rest / WINDOW);
      out = pool !== undefined && need <= pool.size ? pool.take() : Buffer.allocUnsafe(need);
      input.copy(out, 0, 0, at); // the windows before, unchanged
    }
    // Room was made for every later window's worst case (above).
    if (out !== undefined) out.set(mem.subarray(OUT_BASE, OUT_BASE + outLen), o);
    o += outLen;
  }
  if (n > 0) s = stateAfter(input[n - 1]!);
  return { out: out === undefined ? input : out.subarray(0, o), state: s as LineState };
}

/**
 * One chunk of a stored message, starting in `state`, as wire octets (CRLF lines, dots doubled).
 * The result's `state` goes with the next chunk; the caller ends the message (a last line without
 * its line end, the terminator). A changed chunk is written into a buffer of `pool` if given.
 */
export function transformChunk(input: Buffer, state: LineState, pool?: ChunkPool): ChunkResult {
  if (state === AFTER_CR && input.length > 0 && input[0] === 0x0a) {
    // The LF of a CRLF split between chunks: the CR was already sent as CRLF.
    input = input.subarray(1);
    state = LINE_START;
  }
  return wasmTransform(input, state, pool);
}

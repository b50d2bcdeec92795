/**
 * The WebAssembly module of ./body-transform.ts, assembled here from its bytecode (no toolchain, no
 * binary in the repository). It writes the wire form of one window of input; body-transform.ts
 * copies windows in and out and carries the state between chunks.
 *
 * The rule it applies (./line-rule.ts's `wireBody`, written octet by octet): each input octet b, with p the octet before it, is sent as
 * what must be inserted before it, then b itself. Inserted: a CR before a bare LF (b = LF, p ≠ CR);
 * an LF before the octet after a bare CR (p = CR, b ≠ LF); a "." before a "." that starts a line
 * (p = LF, or p = CR). So a CRLF is sent as it is, a bare LF or CR as CRLF, a dot line with its dot
 * doubled. Each octet gets at most one insertion, except a "." right after a bare CR (an LF and a
 * "."): rare, and taken apart (below). Nothing is ever removed, so the output is exactly the input
 * when its length is.
 *
 * Memory (fixed, 13 pages; no memory.grow): TABLE (4 KiB), CONSTS (64 octets), then PREV, the octet
 * before the input (the previous octet of the chunk, or for the first window an LF at a line start,
 * 0 in the middle of a line), the input window of WINDOW octets at IN_BASE, and the output window
 * of OUT_SIZE octets at OUT_BASE.
 *
 * (func $t (param $n i32) (param $last i32) (result i32)) transforms the $n octets at IN_BASE into
 * OUT_BASE and returns the length written; with $last ≠ 0 (the chunk's last window) a final CR gets
 * its LF. It goes in steps of 32 octets, each two blocks of 16: v, the block (at $q+1), and p, the
 * octets before it (an unaligned load at $q). Per block, with SIMD compares:
 *   ins  = ((v = LF) xor (p = CR)) or ((v = ".") and (p = LF))   lanes that get an octet before them
 *   what = min(max(v, CR), (p = CR) xor F5)                      the octet each of them gets
 * (max(v, CR) is CR for an LF and "." for a "."; where p = CR the min makes it LF; F5 elsewhere is
 * above both.) Then for each 8-octet half, with m its 8 bits of ins (i8x16.bitmask): the vector
 * [its 8 octets of v, its 8 octets of what] (i8x16.shuffle) is rearranged by TABLE[m], the swizzle
 * control that puts what[j], v[j] for each lane j set in m and v[j] alone for the others, and
 * stored at $o (16 octets, of which 8 + popcnt(m) count); $o advances by 8 + popcnt(m). No branch
 * depends on where the line ends are, so a line costs no mispredicted branch.
 *   That expansion costs about twice as much as checking a step and copying it. Text in CRLF form
 * needs an insertion only at dot lines, so the loop works in segments of SEGMENT octets and runs a
 * segment "sparse" (a step with no lane in ins is stored as it is, one predictable branch) when the
 * segment before had at most one insertion per 2^SHIFT octets, "dense" (every step expanded) when
 * it had more: bare-LF and mixed text dense, CRLF text sparse.
 *   A step with a "." after a CR leaves the loop. If that "." is in the first block, at lane j,
 * the block is expanded as usual with the bits of m from j on cleared, LF "." "." is written for
 * lane j and the loop resumes after it; else the first block is expanded as usual and the loop
 * resumes at the second. The last (n mod 32) octets, and a window shorter than a step, go through
 * $scalar(q, k, o), the same rule one octet at a time.
 *
 * Loads never read past the input (a step is taken only while 32 octets remain). Stores write
 * garbage past the octets that count (up to 16 octets of a half, 8 + popcnt(m) counting), which
 * what follows overwrites; past the last valid octet of a window at most 8. The output of WINDOW
 * octets is at most 2 × WINDOW (one insertion per octet, two for a "." after a bare CR but none for
 * that CR), so OUT_SIZE leaves 16 octets spare.
 */

/** Input octets per call into the module. */
export const WINDOW = 256 * 1024;
/** 256 swizzle controls of 16 octets (see above). */
const TABLE = 0;
/** 16 × LF, 16 × CR, 16 × ".", 16 × 0xF5 (loaded once: V8 would splat constants again at each use). */
const CONSTS = TABLE + 256 * 16;
/** The octet before the input window. */
export const PREV = CONSTS + 64 + 15;
export const IN_BASE = PREV + 1;
export const OUT_BASE = IN_BASE + WINDOW;
export const OUT_SIZE = 2 * WINDOW + 16;
const PAGES = Math.ceil((OUT_BASE + OUT_SIZE) / 65536);
/** Octets per step: two blocks of 16. */
const STEP = 32;
/** Octets per segment; the next segment is dense after more than one insertion per 2^SHIFT. */
const SEGMENT = 4096;
const SHIFT = 7;

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

const I32 = 0x7f;
const V128 = 0x7b;
const op = {
  block: 0x02, loop: 0x03, if: 0x04, br: 0x0c, brIf: 0x0d, end: 0x0b, void: 0x40, call: 0x10,
  get: 0x20, set: 0x21, tee: 0x22,
  const: 0x41, eqz: 0x45, eq: 0x46, ne: 0x47, ltU: 0x49, gtU: 0x4b, geU: 0x4f, select: 0x1b,
  ctz: 0x68, popcnt: 0x69, add: 0x6a, sub: 0x6b, and: 0x71, or: 0x72, shl: 0x74, shrU: 0x76,
  load8u: 0x2d, store8: 0x3a, store16: 0x3b,
  simd: 0xfd,
} as const;
const SIMD = {
  load: 0x00, store: 0x0b, shuffle: 0x0d, swizzle: 0x0e, eq: 0x23,
  and: 0x4e, or: 0x50, xor: 0x51, bitmask: 0x64, minU: 0x77, maxU: 0x79,
} as const;
/** memarg: alignment hint 1 octet, and `offset`. */
const mem = (offset = 0): number[] => [0x00, ...u32(offset)];

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
const simd = (code: number, ...imm: number[]): number[] => [op.simd, ...u32(code), ...imm];
/** $l += k */
const bump = (l: number, k: number): number[] => [...get(l), ...c(k), op.add, ...set(l)];
/** Writes `octet` at $o and advances it. */
const put = (o: number, octet: number[]): number[] => [...get(o), ...octet, op.store8, ...mem(), ...bump(o, 1)];
const lanes = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, k) => from + k);

// $scalar: params 0 $q, 1 $k, 2 $o; locals 3 $end, 4 $p, 5 $b.
const S = { q: 0, k: 1, o: 2, end: 3, p: 4, b: 5 } as const;
const scalar: number[] = [
  ...get(S.q), ...get(S.k), op.add, ...set(S.end),
  op.block, op.void, // $done
  op.loop, op.void, // $top
  ...get(S.q), ...get(S.end), op.eq, op.brIf, 1,
  ...get(S.q), op.load8u, ...mem(), ...set(S.p),
  ...get(S.q), op.load8u, ...mem(1), ...set(S.b),
  ...get(S.p), ...c(CR), op.eq, op.if, op.void, // after a CR: an LF unless b is that LF
  ...get(S.b), ...c(LF), op.ne, op.if, op.void, ...put(S.o, c(LF)), op.end,
  0x05, // else
  ...get(S.b), ...c(LF), op.eq, op.if, op.void, ...put(S.o, c(CR)), op.end,
  op.end,
  // a "." at a line start (after a CR or an LF: p = CR or p = LF, and CR = LF + 3)
  ...get(S.b), ...c(DOT), op.eq,
  ...get(S.p), ...c(LF), op.eq, ...get(S.p), ...c(CR), op.eq, op.or, op.and,
  op.if, op.void, ...put(S.o, c(DOT)), op.end,
  ...put(S.o, get(S.b)),
  ...bump(S.q, 1),
  op.br, 0,
  op.end, // $top
  op.end, // $done
  ...get(S.o),
  op.end,
];

// $t: params 0 $n, 1 $last; then the i32 locals, then the v128 locals (numbered in that order).
let nextLocal = 2;
const local = (): number => nextLocal++;
/** $q: the octet before the step; $lim: the end of the segment; $q0, $o0: where it started;
 * $dense: how it runs; $j, $o1: the rare step; $lo, $hi: TABLE offsets of a block's halves. */
const T = {
  q: local(), end: local(), o: local(), lim: local(), q0: local(), o0: local(), dense: local(),
  j: local(), o1: local(), lo: local(), hi: local(),
};
/** The blocks of a step: offset, m (i32), then p, v and the compares v = LF, p = CR, v = "." (v128). */
const blocks = [0, 16].map((at) => ({ at, m: local(), p: 0, v: 0, lf: 0, pcr: 0, dot: 0 }));
const I32_LOCALS = nextLocal - 2;
const V = { what: local(), LF: local(), CR: local(), DOT: local(), F5: local() };
for (const b of blocks) Object.assign(b, { p: local(), v: local(), lf: local(), pcr: local(), dot: local() });
const V128_LOCALS = nextLocal - 2 - I32_LOCALS;
type Block = (typeof blocks)[number];
const first = blocks[0]!;

/** Loads a block and compares it: v = LF, p = CR, v = ".". */
const classify = (b: Block): number[] => [
  ...get(T.q), ...simd(SIMD.load, ...mem(b.at)), ...set(b.p),
  ...get(T.q), ...simd(SIMD.load, ...mem(b.at + 1)), ...set(b.v),
  ...get(b.v), ...get(V.LF), ...simd(SIMD.eq), ...set(b.lf),
  ...get(b.p), ...get(V.CR), ...simd(SIMD.eq), ...set(b.pcr),
  ...get(b.v), ...get(V.DOT), ...simd(SIMD.eq), ...set(b.dot),
];
/** Lanes that get an octet before them: bare LFs, lanes after a bare CR ((v = LF) xor (p = CR)),
 * and dot lines (v = ".", p = LF). */
const insertions = (b: Block): number[] => [
  ...get(b.lf), ...get(b.pcr), ...simd(SIMD.xor),
  ...get(b.dot), ...get(b.p), ...get(V.LF), ...simd(SIMD.eq), ...simd(SIMD.and),
  ...simd(SIMD.or),
];
/** Lanes of a "." after a CR (a dot line after a bare CR: two insertions). */
const dotAfterCr = (b: Block): number[] => [...get(b.dot), ...get(b.pcr), ...simd(SIMD.and)];
/** The bits of the lanes `f` sets in any block (0 if none). */
const anyLane = (f: (b: Block) => number[]): number[] => [
  ...blocks.flatMap((b, k) => [...f(b), ...(k > 0 ? simd(SIMD.or) : [])]), ...simd(SIMD.bitmask),
];
/** Swizzles one half (`shuffle` picks [its v, its what]) by TABLE + $idx, its 8 bits of $m × 16,
 * stores it at $o and advances $o. */
const half = (b: Block, shuffle: number[], idx: number, bits: number[]): number[] => [
  ...get(T.o),
  ...get(b.v), ...get(V.what), ...simd(SIMD.shuffle, ...shuffle),
  ...bits, op.tee, idx, ...simd(SIMD.load, ...mem(TABLE)),
  ...simd(SIMD.swizzle),
  ...simd(SIMD.store, ...mem()),
  ...get(T.o), ...c(8), op.add, ...get(idx), op.popcnt, op.add, ...set(T.o),
];
/** Writes a classified block with its insertions ($m set). The octet inserted: CR before an LF,
 * "." before a ".", LF after a CR; as max(v, CR) (CR for LF, "." for "."), then min with LF where
 * p = CR (F5 xor (p = CR): LF there, F5 elsewhere, above CR and "."). */
const expand = (b: Block): number[] => [
  ...get(b.v), ...get(V.CR), ...simd(SIMD.maxU),
  ...get(b.pcr), ...get(V.F5), ...simd(SIMD.xor), ...simd(SIMD.minU), ...set(V.what),
  ...half(b, [...lanes(0, 8), ...lanes(16, 24)], T.lo, [...get(b.m), ...c(255), op.and, ...c(4), op.shl]),
  ...half(b, [...lanes(8, 16), ...lanes(24, 32)], T.hi, [...get(b.m), ...c(8), op.shrU, ...c(4), op.shl]),
];
const expandAll = blocks.flatMap((b) => [...insertions(b), ...simd(SIMD.bitmask), ...set(b.m), ...expand(b)]);
/** Writes block b as it is (no insertions). */
const plain = (b: Block): number[] => [...get(T.o), ...get(b.v), ...simd(SIMD.store, ...mem(b.at))];
/** Ends a step: the next, while a whole step remains before $lim (depth of the loop). */
const next = (loop: number): number[] => [
  ...bump(T.q, STEP),
  ...get(T.q), ...c(STEP), op.add, ...get(T.lim), op.ltU, op.brIf, loop,
];
const t: number[] = [
  ...c(PREV), ...set(T.q),
  ...c(IN_BASE), ...get(0), op.add, ...set(T.end),
  ...c(OUT_BASE), ...set(T.o),
  ...c(CONSTS), ...simd(SIMD.load, ...mem(0)), ...set(V.LF),
  ...c(CONSTS), ...simd(SIMD.load, ...mem(16)), ...set(V.CR),
  ...c(CONSTS), ...simd(SIMD.load, ...mem(32)), ...set(V.DOT),
  ...c(CONSTS), ...simd(SIMD.load, ...mem(48)), ...set(V.F5),
  op.block, op.void, // $tail
  op.loop, op.void, // $segment  [0 $segment, 1 $tail]
  ...get(T.q), ...c(STEP), op.add, ...get(T.end), op.geU, op.brIf, 1, // no whole step left
  ...get(T.q), ...c(SEGMENT), op.add, ...get(T.end),
  ...get(T.q), ...c(SEGMENT), op.add, ...get(T.end), op.ltU, op.select, ...set(T.lim),
  ...get(T.q), ...set(T.q0), ...get(T.o), ...set(T.o0),
  op.block, op.void, // $rare  [0 $rare, 1 $segment]
  op.block, op.void, // $done  [0 $done, 1 $rare, 2 $segment]
  op.block, op.void, // $dense  [0 $dense, 1 $done, 2 $rare]
  ...get(T.dense), op.brIf, 0,
  // Sparse: a step with no insertion is stored as it is.
  op.loop, op.void, // [0 loop, 1 $dense, 2 $done, 3 $rare]
  ...blocks.flatMap(classify),
  ...anyLane(insertions), op.if, op.void, // [0 if, 1 loop, 2 $dense, 3 $done, 4 $rare]
  ...anyLane(dotAfterCr), op.brIf, 4,
  ...expandAll,
  0x05, // else
  ...blocks.flatMap(plain),
  ...bump(T.o, STEP),
  op.end,
  ...next(0),
  op.end, // loop
  op.br, 1, // $done
  op.end, // $dense
  // Dense: every step expanded.
  op.loop, op.void, // [0 loop, 1 $done, 2 $rare]
  ...blocks.flatMap(classify),
  ...anyLane(dotAfterCr), op.brIf, 2,
  ...expandAll,
  ...next(0),
  op.end, // loop
  op.end, // $done
  // The segment is done: the next is sparse after at most one insertion per 2^SHIFT octets.
  ...get(T.o), ...get(T.o0), op.sub, ...get(T.q), ...get(T.q0), op.sub, op.sub, ...c(SHIFT), op.shl,
  ...get(T.q), ...get(T.q0), op.sub, op.gtU, ...set(T.dense),
  op.br, 1,
  op.end, // $rare
  // A "." after a CR in the step. If in its first block, at lane j: the lanes before j expanded
  // as usual, then LF "." "." for lane j, and the step starts again after it. Else the first block
  // expanded as usual, and the step starts again at the second.
  ...classify(first),
  ...insertions(first), ...simd(SIMD.bitmask), ...set(first.m),
  ...dotAfterCr(first), ...simd(SIMD.bitmask), op.tee, T.j,
  op.if, op.void,
  ...get(T.j), op.ctz, ...set(T.j),
  ...get(first.m), ...c(1), ...get(T.j), op.shl, ...c(1), op.sub, op.and, ...set(first.m),
  ...get(T.o), ...get(T.j), op.add, ...get(first.m), op.popcnt, op.add, ...set(T.o1),
  ...expand(first),
  ...get(T.o1), ...c(0x2e0a), op.store16, ...mem(),
  ...get(T.o1), ...c(DOT), op.store8, ...mem(2),
  ...get(T.o1), ...c(3), op.add, ...set(T.o),
  ...get(T.q), ...get(T.j), op.add, ...c(1), op.add, ...set(T.q),
  op.br, 1, // $segment
  op.end,
  ...expand(first),
  ...bump(T.q, 16),
  op.br, 0,
  op.end, // $segment
  op.end, // $tail
  ...get(T.q), ...get(T.end), ...get(T.q), op.sub, ...c(1), op.sub, ...get(T.o), op.call, 1, ...set(T.o),
  op.block, op.void, // $final
  ...get(1), op.eqz, op.brIf, 0, // not the last window
  ...get(0), op.eqz, op.brIf, 0,
  ...get(T.end), ...c(1), op.sub, op.load8u, ...mem(), ...c(CR), op.ne, op.brIf, 0,
  ...put(T.o, c(LF)),
  op.end, // $final
  ...get(T.o), ...c(OUT_BASE), op.sub,
  op.end,
];

/** TABLE[m]: for each lane j of the 8, lane 8 + j (what) then j (v) if bit j of m is set, else j
 * alone; the lanes after those 8 + popcnt(m) are never counted. */
function table(): number[] {
  const out: number[] = [];
  for (let m = 0; m < 256; m++) {
    const entry: number[] = [];
    for (let j = 0; j < 8; j++) {
      if (m & (1 << j)) entry.push(8 + j);
      entry.push(j);
    }
    while (entry.length < 16) entry.push(0xff);
    out.push(...entry);
  }
  return out;
}

const section = (id: number, content: number[]): number[] => [id, ...u32(content.length), ...content];
const name = (s: string): number[] => [...u32(s.length), ...Buffer.from(s, 'latin1')];
const func = (locals: number[][], body: number[]): number[] => {
  const code = [...u32(locals.length), ...locals.flat(), ...body];
  return [...u32(code.length), ...code];
};
const DATA = [...table(), ...[LF, CR, DOT, 0xf5].flatMap((x) => Array<number>(16).fill(x))];

export const MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // \0asm, version 1
  ...section(1, [2, 0x60, 2, I32, I32, 1, I32, 0x60, 3, I32, I32, I32, 1, I32]), // types: t, scalar
  ...section(3, [2, 0, 1]), // functions 0, 1 have types 0, 1
  ...section(5, [1, 0x00, ...u32(PAGES)]), // memory 0: PAGES pages, no maximum
  ...section(7, [2, ...name('t'), 0x00, 0, ...name('m'), 0x02, 0]), // exports: t (func 0), m (memory 0)
  ...section(10, [2, ...func([[I32_LOCALS, I32], [V128_LOCALS, V128]], t), ...func([[3, I32]], scalar)]),
  ...section(11, [1, 0x00, ...c(TABLE), op.end, ...u32(DATA.length), ...DATA]), // TABLE, CONSTS
]);

// The few pieces of the WebAssembly binary format (https://webassembly.github.io/spec/core/binary/)
// that the SIMD kernels (simd.ts) need: one module with its own memory and exported functions,
// and the instructions they use. The kernels' bytes are generated from integers (n, ranks, block
// sizes) at run time, so no assembler and no build step are needed; wasm SIMD is fully specified
// (we use no relaxed or NaN-dependent instruction), so every machine computes the same bits.

export const I32 = 0x7f;
export const V128 = 0x7b;

/** Unsigned LEB128. */
export function u32(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

/** Signed LEB128 (for i32.const). */
function s32(value: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    const done = (value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

const vec = (items: readonly number[][]): number[] => [...u32(items.length), ...items.flat()];
const name = (text: string): number[] => vec([...Buffer.from(text, "utf8")].map((b) => [b]));
const section = (id: number, body: number[]): number[] => [id, ...u32(body.length), ...body];
/** A SIMD instruction: the 0xfd prefix and its opcode as LEB128. */
const simd = (opcode: number, ...immediates: number[]): number[] => [0xfd, ...u32(opcode), ...immediates];
/** Alignment hint 16 bytes (2^4) and a constant offset added to the address on the stack. */
const memarg = (offset: number): number[] => [4, ...u32(offset)];

/** Instructions, as byte arrays. */
export const op = {
  localGet: (i: number) => [0x20, ...u32(i)],
  localSet: (i: number) => [0x21, ...u32(i)],
  localTee: (i: number) => [0x22, ...u32(i)],
  i32Const: (v: number) => [0x41, ...s32(v)],
  i32Add: [0x6a],
  i32LtU: [0x49],
  /** loop with no result; `br 0` inside jumps back to its start. */
  loop: [0x03, 0x40],
  brIf: (depth: number) => [0x0d, ...u32(depth)],
  end: [0x0b],
  v128Load: (offset: number) => simd(0x00, ...memarg(offset)),
  v128Store: (offset: number) => simd(0x0b, ...memarg(offset)),
  v128Const: (bytes: readonly number[]) => simd(0x0c, ...bytes),
  i8x16Shuffle: (lanes: readonly number[]) => simd(0x0d, ...lanes),
  f32x4Splat: simd(0x13),
  f64x2Splat: simd(0x14),
  i32x4Splat: simd(0x11),
  f32x4Eq: simd(0x41),
  f32x4Lt: simd(0x43),
  f32x4Gt: simd(0x44),
  f32x4Le: simd(0x45),
  v128And: simd(0x4e),
  v128Or: simd(0x50),
  v128Bitselect: simd(0x52),
  f32x4DemoteF64x2Zero: simd(0x5e),
  f64x2PromoteLowF32x4: simd(0x5f),
  i32x4Eq: simd(0x37),
  i32x4Ne: simd(0x38),
  i32x4Sub: simd(0xb1),
  f32x4Pmin: simd(0xea),
  f32x4Pmax: simd(0xeb),
  f64x2Eq: simd(0x47),
  f64x2Add: simd(0xf0),
  f64x2Mul: simd(0xf2),
  f64x2Div: simd(0xf3),
  f64x2ConvertLowI32x4S: simd(0xfe),
};

/** A function of the module: its parameters (value types), extra locals, and body (without the final `end`). */
export interface WasmFunction {
  readonly name: string;
  readonly params: readonly number[];
  readonly locals: readonly { readonly count: number; readonly type: number }[];
  readonly body: readonly number[][];
}

/** A module with one memory of `pages` 64 KiB pages exported as "memory", and the functions (no results), exported by name. */
export function moduleBytes(pages: number, functions: readonly WasmFunction[]): Uint8Array {
  const types = functions.map((f) => [0x60, ...vec(f.params.map((t) => [t])), ...vec([])]);
  const code = functions.map((f) => {
    const body = [...vec(f.locals.map((l) => [...u32(l.count), l.type])), ...f.body.flat(), ...op.end];
    return [...u32(body.length), ...body];
  });
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec(types)),
    ...section(3, vec(functions.map((_, i) => u32(i)))),
    ...section(5, vec([[0x00, ...u32(pages)]])),
    ...section(7, vec([[...name("memory"), 0x02, 0], ...functions.map((f, i) => [...name(f.name), 0x00, ...u32(i)])])),
    ...section(10, vec(code)),
  ]);
}

/** A 16-byte constant whose four 32-bit lanes all hold `bits`. */
export function lanes32(bits: number): number[] {
  const out: number[] = [];
  for (let lane = 0; lane < 4; lane++) for (let b = 0; b < 4; b++) out.push((bits >>> (8 * b)) & 0xff);
  return out;
}

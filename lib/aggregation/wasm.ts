// The few pieces of the WebAssembly binary format (https://webassembly.github.io/spec/core/binary/)
// that the SIMD kernels (simd.ts) need: one module with its own memory and exported functions,
// and the instructions they use. The kernels' bytes are generated from integers (n, ranks, block
// sizes) at run time, so no assembler and no build step are needed; wasm SIMD is fully specified
// (we use no relaxed or NaN-dependent instruction), so every machine computes the same bits.
//
// Bytes are written straight into one growing buffer (a kernel is tens of KiB): building it from
// small arrays joined by spreads took a quarter of a second for the largest kernels.

export const I32 = 0x7f;
export const V128 = 0x7b;

/** A growing byte buffer; the instruction methods append one instruction each and return the buffer. */
export class Code {
  #bytes = new Uint8Array(4096);
  #length = 0;

  get length(): number {
    return this.#length;
  }

  private reserve(extra: number): void {
    if (this.#length + extra <= this.#bytes.length) return;
    const grown = new Uint8Array(Math.max(2 * this.#bytes.length, this.#length + extra));
    grown.set(this.#bytes.subarray(0, this.#length));
    this.#bytes = grown;
  }

  byte(value: number): this {
    this.reserve(1);
    this.#bytes[this.#length++] = value;
    return this;
  }

  bytes(values: ArrayLike<number>): this {
    this.reserve(values.length);
    for (let i = 0; i < values.length; i++) this.#bytes[this.#length++] = values[i];
    return this;
  }

  append(code: Code): this {
    this.reserve(code.#length);
    this.#bytes.set(code.#bytes.subarray(0, code.#length), this.#length);
    this.#length += code.#length;
    return this;
  }

  /** Unsigned LEB128. */
  u32(value: number): this {
    do {
      const low = value & 0x7f;
      value >>>= 7;
      this.byte(value !== 0 ? low | 0x80 : low);
    } while (value !== 0);
    return this;
  }

  /** Signed LEB128 (for i32.const). */
  s32(value: number): this {
    for (;;) {
      const low = value & 0x7f;
      value >>= 7;
      const done = (value === 0 && (low & 0x40) === 0) || (value === -1 && (low & 0x40) !== 0);
      this.byte(done ? low : low | 0x80);
      if (done) return this;
    }
  }

  /** A length-prefixed UTF-8 name. */
  name(text: string): this {
    const utf8 = Buffer.from(text, "utf8");
    return this.u32(utf8.length).bytes(utf8);
  }

  toBytes(): Uint8Array {
    return this.#bytes.slice(0, this.#length);
  }

  localGet(i: number): this {
    return this.byte(0x20).u32(i);
  }
  localSet(i: number): this {
    return this.byte(0x21).u32(i);
  }
  localTee(i: number): this {
    return this.byte(0x22).u32(i);
  }
  i32Const(value: number): this {
    return this.byte(0x41).s32(value);
  }
  i32Add(): this {
    return this.byte(0x6a);
  }
  i32LtU(): this {
    return this.byte(0x49);
  }
  /** A loop with no result; `br_if 0` inside jumps back to its start. */
  loop(): this {
    return this.byte(0x03).byte(0x40);
  }
  brIf(depth: number): this {
    return this.byte(0x0d).u32(depth);
  }
  end(): this {
    return this.byte(0x0b);
  }

  /** A SIMD instruction: the 0xfd prefix and its opcode as LEB128. */
  private simd(opcode: number): this {
    return this.byte(0xfd).u32(opcode);
  }
  /** Alignment hint 16 bytes (2^4), then the constant offset added to the address on the stack. */
  v128Load(offset: number): this {
    return this.simd(0x00).byte(4).u32(offset);
  }
  v128Store(offset: number): this {
    return this.simd(0x0b).byte(4).u32(offset);
  }
  v128Const(bytes: ArrayLike<number>): this {
    return this.simd(0x0c).bytes(bytes);
  }
  i8x16Shuffle(lanes: ArrayLike<number>): this {
    return this.simd(0x0d).bytes(lanes);
  }
  i32x4Splat(): this {
    return this.simd(0x11);
  }
  i32x4Eq(): this {
    return this.simd(0x37);
  }
  f32x4Eq(): this {
    return this.simd(0x41);
  }
  f32x4Lt(): this {
    return this.simd(0x43);
  }
  f32x4Gt(): this {
    return this.simd(0x44);
  }
  f32x4Le(): this {
    return this.simd(0x45);
  }
  f64x2Eq(): this {
    return this.simd(0x47);
  }
  v128And(): this {
    return this.simd(0x4e);
  }
  v128Or(): this {
    return this.simd(0x50);
  }
  v128Bitselect(): this {
    return this.simd(0x52);
  }
  f32x4DemoteF64x2Zero(): this {
    return this.simd(0x5e);
  }
  f64x2PromoteLowF32x4(): this {
    return this.simd(0x5f);
  }
  i32x4Sub(): this {
    return this.simd(0xb1);
  }
  /** b < a ? b : a, lane-wise (the smaller of two finite values). */
  f32x4Pmin(): this {
    return this.simd(0xea);
  }
  /** a < b ? b : a, lane-wise (the larger of two finite values). */
  f32x4Pmax(): this {
    return this.simd(0xeb);
  }
  f64x2Add(): this {
    return this.simd(0xf0);
  }
  f64x2Mul(): this {
    return this.simd(0xf2);
  }
  f64x2Div(): this {
    return this.simd(0xf3);
  }
  f64x2ConvertLowI32x4S(): this {
    return this.simd(0xfe);
  }
}

/** A function of the module: its parameters (value types), extra locals, and body (without the final `end`). */
export interface WasmFunction {
  readonly name: string;
  readonly params: readonly number[];
  readonly locals: readonly { readonly count: number; readonly type: number }[];
  readonly body: Code;
}

/** A module with one memory of `pages` 64 KiB pages exported as "memory", and the functions (no results), exported by name. */
export function moduleBytes(pages: number, functions: readonly WasmFunction[]): Uint8Array {
  const out = new Code().bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
  const section = (id: number, content: Code) => out.byte(id).u32(content.length).append(content);
  const types = new Code().u32(functions.length);
  for (const f of functions) types.byte(0x60).u32(f.params.length).bytes(f.params).u32(0);
  section(1, types);
  const indices = new Code().u32(functions.length);
  functions.forEach((_, i) => indices.u32(i));
  section(3, indices);
  section(5, new Code().u32(1).byte(0x00).u32(pages));
  const exports = new Code().u32(functions.length + 1).name("memory").byte(0x02).u32(0);
  functions.forEach((f, i) => exports.name(f.name).byte(0x00).u32(i));
  section(7, exports);
  const codes = new Code().u32(functions.length);
  for (const f of functions) {
    const body = new Code().u32(f.locals.length);
    for (const l of f.locals) body.u32(l.count).byte(l.type);
    body.append(f.body).end();
    codes.u32(body.length).append(body);
  }
  section(10, codes);
  return out.toBytes();
}

/** A 16-byte constant whose four 32-bit lanes all hold `bits`. */
export function lanes32(bits: number): number[] {
  const out: number[] = [];
  for (let lane = 0; lane < 4; lane++) for (let b = 0; b < 4; b++) out.push((bits >>> (8 * b)) & 0xff);
  return out;
}

/** A 16-byte constant whose two 64-bit lanes both hold the float64 `value`. */
export function lanesF64(value: number): number[] {
  return [...new Uint8Array(new Float64Array([value, value]).buffer)];
}

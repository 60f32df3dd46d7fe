// The part of the WebAssembly JavaScript API (https://webassembly.github.io/spec/js-api/) that
// simd.ts uses. Node has it as a global; TypeScript declares it only in its DOM
// libraries, which this Node project does not load.
declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array);
  }
  class Instance {
    constructor(module: Module, imports?: Record<string, Record<string, unknown>>);
    readonly exports: Record<string, unknown>;
  }
  class Memory {
    readonly buffer: ArrayBuffer;
  }
  function validate(bytes: Uint8Array): boolean;
}

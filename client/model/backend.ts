// Chooses where tensors are computed: tfjs-node's native TensorFlow when it loads (an
// optional dependency that cannot install everywhere), else the wasm backend with SIMD,
// else plain JavaScript (cpu). Call initBackend once before any tensor op; trainers call
// ensureBackend(), which does it with the defaults if nobody did. Logs go to stderr so they
// never mix with a command's output.
//
// The wasm backend ships without the Conv2DBackpropFilter kernel, so a CNN could not train
// on it; we register one built from wasm's own Transpose and Conv2D kernels.
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { AnchorFLError } from "../../lib/errors.js";

export type BackendName = "tensorflow" | "wasm" | "cpu";
export const BACKEND_PREFERENCE: readonly BackendName[] = ["tensorflow", "wasm", "cpu"];

export class BackendError extends AnchorFLError {}

export interface BackendInfo {
  readonly name: BackendName;
  /** Whether the wasm backend runs its SIMD build (undefined for other backends). */
  readonly simd?: boolean;
}

type Log = (line: string) => void;

// undefined once loaded, else why it could not load.
let tfjsNode: Promise<string | undefined> | undefined;

/**
 * Tries `@tensorflow/tfjs-node` once per process (it registers the "tensorflow" backend when its
 * binding loads); every caller that falls back past it hears why.
 */
async function loadTfjsNode(log: Log): Promise<boolean> {
  tfjsNode ??= import("@tensorflow/tfjs-node").then(
    () => undefined,
    (e: Error) => e.message.split("\n")[0],
  );
  const failure = await tfjsNode;
  if (failure !== undefined) log(`backend: @tensorflow/tfjs-node not usable (${failure})`);
  return failure === undefined;
}

type KernelArgs = Parameters<tf.KernelFunc>[0];

/**
 * dW[kh, kw, ci, co] = Σ_{n, y, x} X[n, y + kh, x + kw, ci] · dY[n, y, x, co] for stride 1,
 * valid padding, NHWC. That is itself a valid convolution if the batch axis of X plays the
 * channel role: conv2d(Xᵀ[ci, H, W, n], dYᵀ[OH, OW, n, co]) = [ci, KH, KW, co], transposed
 * to [KH, KW, ci, co].
 */
function conv2DBackpropFilterWasm({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { strides, pad, dataFormat, dilations } = attrs as unknown as { strides: number | number[]; pad: unknown; dataFormat: string; dilations?: number | number[] };
  const ones = (v: number | number[] | undefined) => v === undefined || [v].flat().every((s) => s === 1);
  if (!ones(strides) || !ones(dilations) || pad !== "valid" || dataFormat !== "NHWC") {
    throw new BackendError(
      `wasm Conv2DBackpropFilter supports stride 1, dilation 1, valid padding, NHWC; found strides ${JSON.stringify(strides)}, dilations ${JSON.stringify(dilations)}, pad ${JSON.stringify(pad)}, ${dataFormat}`,
      { hint: "use the cpu backend for other convolutions" },
    );
  }
  const run = (name: string, kernelInputs: Record<string, tf.TensorInfo>, kernelAttrs: Record<string, unknown>) =>
    tf.getKernel(name, "wasm")!.kernelFunc({ inputs: kernelInputs, backend, attrs: kernelAttrs as tf.NamedAttrMap }) as tf.TensorInfo;
  const xT = run("Transpose", { x }, { perm: [3, 1, 2, 0] });
  const dyT = run("Transpose", { x: dy }, { perm: [1, 2, 0, 3] });
  const conv = run("Conv2D", { x: xT, filter: dyT }, { strides: [1, 1], pad: "valid", dataFormat: "NHWC", dilations: [1, 1], dimRoundingMode: undefined });
  const dw = run("Transpose", { x: conv }, { perm: [1, 2, 0, 3] });
  for (const t of [xT, dyT, conv]) (backend as tf.KernelBackend).disposeData(t.dataId);
  return dw;
}

function registerWasmExtras(): void {
  if (!tf.getKernel("Conv2DBackpropFilter", "wasm")) {
    tf.registerKernel({ kernelName: "Conv2DBackpropFilter", backendName: "wasm", kernelFunc: conv2DBackpropFilterWasm });
  }
}

async function trySet(name: BackendName, log: Log): Promise<boolean> {
  if (name === "tensorflow" && !(await loadTfjsNode(log))) return false;
  if (name === "wasm") registerWasmExtras();
  try {
    return await tf.setBackend(name);
  } catch (e) {
    log(`backend: ${name} failed to start (${(e as Error).message})`);
    return false;
  }
}

function info(): BackendInfo {
  const name = tf.getBackend() as BackendName;
  return name === "wasm" ? { name, simd: tf.env().getBool("WASM_HAS_SIMD_SUPPORT") } : { name };
}

let current: BackendInfo | undefined;

/**
 * Selects the first backend that starts, trying `preferred` first (then tensorflow, wasm,
 * cpu unless `strict`), and logs which one runs. With `strict`, failing to start `preferred`
 * is an error rather than a fallback.
 */
export async function initBackend(preferred?: BackendName, { strict = false, log = (line: string) => console.error(line) }: { strict?: boolean; log?: Log } = {}): Promise<BackendInfo> {
  if (preferred !== undefined && !BACKEND_PREFERENCE.includes(preferred)) {
    throw new BackendError(`expected a backend among ${BACKEND_PREFERENCE.join(", ")}, found "${preferred}"`);
  }
  const order = strict && preferred ? [preferred] : [...new Set([...(preferred ? [preferred] : []), ...BACKEND_PREFERENCE])];
  for (const name of order) {
    if (await trySet(name, log)) {
      await tf.ready();
      current = info();
      log(`backend: ${current.name}${current.simd === undefined ? "" : current.simd ? " (SIMD)" : " (no SIMD)"}`);
      return current;
    }
  }
  throw new BackendError(`no TensorFlow.js backend could start (tried ${order.join(", ")})`);
}

/** The running backend, initialising the default one (and logging it) on first use. */
export async function ensureBackend(): Promise<BackendInfo> {
  return current ? info() : initBackend();
}

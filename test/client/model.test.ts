import * as tf from "@tensorflow/tfjs";
import { expect } from "chai";
import { BackendError, initBackend } from "../../client/model/backend.js";
import { buildModel, genesisWeights, getWeights, setWeights, WeightsMismatchError } from "../../client/model/build.js";
import { cnnSpec, decodeModelSpec, encodeModelSpec, mlpSpec, modelShapes, modelSpecDigest, ModelSpecError, parameterCount, type ModelSpec } from "../../client/model/spec.js";
import { sha256Digest } from "../../lib/digest.js";
import { Random } from "../../lib/random.js";

const quiet = { log: () => {} };

function randomTensor(shape: number[], seed: number): tf.Tensor {
  const r = new Random(seed);
  return tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r.normal()), shape);
}

/** A spec with one layer's config changed, for hostile-spec tests. */
function withLayer(spec: ModelSpec, index: number, change: Record<string, unknown>, className?: string): ModelSpec {
  const layers = spec.topology.config.layers.map((l, i) => (i === index ? { class_name: className ?? l.class_name, config: { ...l.config, ...change } } : l));
  return { ...spec, topology: { ...spec.topology, config: { ...spec.topology.config, layers } } } as ModelSpec;
}

describe("model specs and backend", () => {
  after(async () => initBackend("wasm", quiet));

  describe("specs (pure)", () => {
    it("digest is the sha-256 of the canonical bytes and changes with the seed or architecture", () => {
      const spec = mlpSpec();
      expect(modelSpecDigest(spec)).to.equal(sha256Digest(encodeModelSpec(spec)));
      expect(modelSpecDigest(mlpSpec())).to.equal(modelSpecDigest(spec));
      expect(modelSpecDigest(mlpSpec({ seed: 1 }))).not.to.equal(modelSpecDigest(spec));
      expect(modelSpecDigest(mlpSpec({ hidden: 64 }))).not.to.equal(modelSpecDigest(spec));
      expect(decodeModelSpec(encodeModelSpec(cnnSpec()))).to.deep.equal(cnnSpec());
    });

    it("infers weight names and shapes in canonical order", () => {
      expect(modelShapes(mlpSpec())).to.deep.equal([
        { name: "dense1/bias", shape: [128] },
        { name: "dense1/kernel", shape: [784, 128] },
        { name: "dense2/bias", shape: [10] },
        { name: "dense2/kernel", shape: [128, 10] },
      ]);
      expect(parameterCount(mlpSpec())).to.equal(101770);
      expect(modelShapes(cnnSpec()).map((s) => `${s.name}:${s.shape.join("x")}`)).to.deep.equal([
        "conv1/bias:8", "conv1/kernel:5x5x1x8", "conv2/bias:16", "conv2/kernel:5x5x8x16", "dense1/bias:10", "dense1/kernel:256x10",
      ]);
    });

    it("refuses hostile or non-canonical specs with typed errors naming the problem", () => {
      const cnn = cnnSpec();
      expect(() => decodeModelSpec(new TextEncoder().encode(JSON.stringify(cnn)))).to.throw(ModelSpecError, "expected canonical JSON");
      expect(() => decodeModelSpec(Uint8Array.of(0xff, 0x7b))).to.throw(ModelSpecError, "unparsable");
      expect(() => encodeModelSpec({ ...cnn, classes: 1 })).to.throw(ModelSpecError, "classes >= 2");
      expect(() => modelShapes(withLayer(cnn, 0, { padding: "same" }))).to.throw(ModelSpecError, 'layer conv1: expected padding "valid"');
      expect(() => modelShapes(withLayer(cnn, 0, { strides: [2, 2] }))).to.throw(ModelSpecError, "strides and dilation_rate 1");
      expect(() => modelShapes(withLayer(cnn, 1, {}, "Lambda"))).to.throw(ModelSpecError, 'found class "Lambda"');
      expect(() => modelShapes(withLayer(cnn, 1, { rate: 0.5 }, "Dropout"))).to.throw(ModelSpecError, 'found class "Dropout"');
      expect(() => modelShapes(withLayer(cnn, 1, { name: "conv1" }))).to.throw(ModelSpecError, 'name "conv1" is used twice');
      expect(() => modelShapes(withLayer(cnn, 5, { units: 9 }))).to.throw(ModelSpecError, "output 10 class scores, found shape [9]");
      expect(() => modelShapes(withLayer(cnn, 5, { activation: "linear" }))).to.throw(ModelSpecError, "softmax Dense");
      expect(() => modelShapes(withLayer(mlpSpec(), 1, { units: 1e6 }))).to.throw(ModelSpecError, "expected at most 16,777,216 parameters, found 795,000,010");
      expect(() => modelShapes({ ...cnn, inputShape: [32, 32, 1] })).to.throw(ModelSpecError, "batch_input_shape [null, 32, 32, 1]");
    });
  });

  describe("backend", () => {
    it("selects the requested backend, logs it, and falls back past tfjs-node when it cannot load", async () => {
      const lines: string[] = [];
      const cpu = await initBackend("cpu", { log: (l) => lines.push(l) });
      expect(cpu.name).to.equal("cpu");
      expect(tf.getBackend()).to.equal("cpu");
      const auto = await initBackend(undefined, { log: (l) => lines.push(l) });
      expect(["tensorflow", "wasm"]).to.include(auto.name);
      if (auto.name === "wasm") expect(lines.some((l) => l.includes("tfjs-node not usable"))).to.equal(true);
      expect(lines.at(-1)).to.match(/^backend: (tensorflow|wasm \(SIMD\)|wasm \(no SIMD\))$/);
      await expectReject(initBackend("gpu" as "cpu", quiet), BackendError, 'found "gpu"');
    });

    it("wasm Conv2DBackpropFilter matches the cpu kernel on random inputs", async () => {
      const cases = [
        { x: [2, 9, 7, 3], filter: [3, 2, 3, 4] },
        { x: [5, 12, 12, 1], filter: [5, 5, 1, 8] },
        { x: [3, 8, 8, 8], filter: [5, 5, 8, 16] },
      ];
      const gradients = async (backend: "cpu" | "wasm") => {
        await initBackend(backend, { strict: true, ...quiet });
        return cases.map(({ x, filter }, i) =>
          tf.tidy(() => {
            const xs = randomTensor(x, i);
            const dy = randomTensor([x[0], x[1] - filter[0] + 1, x[2] - filter[1] + 1, filter[3]], 100 + i);
            const dw = tf.engine().runKernel("Conv2DBackpropFilter", { x: xs, dy }, { strides: [1, 1], pad: "valid", dataFormat: "NHWC", dimRoundingMode: undefined, filterShape: filter } as unknown as tf.NamedAttrMap) as tf.Tensor;
            expect(dw.shape).to.deep.equal(filter);
            return dw.dataSync().slice();
          }),
        );
      };
      const cpu = await gradients("cpu");
      const wasm = await gradients("wasm");
      cpu.forEach((c, i) => {
        const scale = Math.max(...c.map(Math.abs));
        expect(scale).to.be.above(1);
        c.forEach((v, j) => expect(Math.abs(v - wasm[i][j]) / scale, `case ${i} value ${j}`).to.be.below(1e-5));
      });
      await initBackend("wasm", quiet);
      // the kernel frees its intermediate buffers: the backend holds no more data than before
      const dataIds = tf.backend().numDataIds();
      tf.tidy(() => {
        tf.grad((f: tf.Tensor) => tf.conv2d(randomTensor([2, 6, 6, 1], 1) as tf.Tensor4D, f as tf.Tensor4D, 1, "valid").sum())(randomTensor([3, 3, 1, 2], 2));
      });
      expect(tf.backend().numDataIds()).to.equal(dataIds);
      expect(() => tf.tidy(() => tf.grad((f: tf.Tensor) => tf.conv2d(randomTensor([1, 6, 6, 1], 1) as tf.Tensor4D, f as tf.Tensor4D, 2, "valid").sum())(randomTensor([3, 3, 1, 2], 2)))).to.throw(BackendError, "stride 1");
    });
  });

  describe("building and weights", () => {
    it("builds both specs with explicit weight names, the same genesis on cpu and wasm", async () => {
      for (const spec of [mlpSpec(), cnnSpec()]) {
        await initBackend("cpu", quiet);
        const onCpu = await genesisWeights(spec);
        await initBackend("wasm", quiet);
        const onWasm = await genesisWeights(spec);
        const again = await genesisWeights(spec);
        expect(onCpu.map(({ name, shape }) => ({ name, shape }))).to.deep.equal(modelShapes(spec));
        expect(onWasm).to.deep.equal(onCpu);
        expect(again).to.deep.equal(onWasm);
        const kernel = onWasm.find((t) => t.name.endsWith("kernel"))!;
        expect(new Set(kernel.data).size).to.be.above(kernel.data.length / 2); // random, not constant
        expect(await genesisWeights(mlpSpec({ seed: 9 }))).not.to.deep.equal(await genesisWeights(mlpSpec()));
      }
    });

    it("sets and gets weights by name, refusing missing, extra or misshapen tensors", async () => {
      const spec = cnnSpec();
      const model = await buildModel(spec);
      try {
        const weights = getWeights(model).map((t, i) => ({ ...t, data: t.data.map((_, j) => i + j / 1000) }));
        setWeights(model, [...weights].reverse());
        expect(getWeights(model)).to.deep.equal(weights);
        expect(() => setWeights(model, weights.slice(1))).to.throw(WeightsMismatchError, 'expected a tensor named "conv1/bias"');
        expect(() => setWeights(model, [...weights, { name: "extra", shape: [1], data: new Float32Array(1) }])).to.throw(WeightsMismatchError, "extra");
        const bad = weights.map((t) => (t.name === "conv2/kernel" ? { ...t, shape: [5, 5, 16, 8] } : t));
        expect(() => setWeights(model, bad)).to.throw(WeightsMismatchError, 'tensor "conv2/kernel": expected shape [5, 5, 8, 16]');
      } finally {
        model.dispose();
      }
    });
  });
});

async function expectReject(p: Promise<unknown>, type: new (...args: never[]) => Error, text: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(type);
    expect((e as Error).message).to.include(text);
    return;
  }
  expect.fail(`expected ${type.name} "${text}"`);
}

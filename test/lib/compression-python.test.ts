// Compressed update files against NumPy, an implementation that shares nothing with ours:
// NumPy's float32 -> float16 cast (round to nearest even) and np.rint (half to even) must give
// exactly the bytes we wrote for f16 and i8, and a NumPy reader of the index/value layout must
// rebuild exactly the dense delta our decoder returns.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { decodeUpdate, encodeUpdate } from "../../lib/codec/update-file.js";
import { flatten, type Tensor } from "../../lib/tensors.js";
import { sampleMetadata, seededTensor } from "./safetensors.fixtures.js";

// Prints, per file, whether NumPy's own encoding of the original values matches the stored
// tensors bit for bit, and the dense vector NumPy rebuilds (float32, as a list).
const CHECK = String.raw`
import json, struct, sys
import numpy as np
def read(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__")
    kinds = {"F32": "<f4", "F16": "<f2", "I8": "i1", "I32": "<i4"}
    return meta, {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], dtype=kinds[v["dtype"]]).reshape(v["shape"]) for k, v in header.items()}
# Flat, as the JSON holds them; stored tensors are compared flattened too.
originals = {k: np.asarray(v, dtype=np.float32) for k, v in json.load(open(sys.argv[1])).items()}
names = sorted(originals)
out = {}
for path in sys.argv[2:]:
    meta, t = read(path)
    scheme = meta["compression"]
    if scheme == "f16":
        same = all(np.array_equal(originals[k].astype(np.float16).view(np.uint16), t[k].ravel().view(np.uint16)) for k in names)
        dense = np.concatenate([t[k].astype(np.float32).ravel() for k in names])
    elif scheme == "i8":
        scales = {k: np.float32(np.abs(originals[k]).max() / np.float32(127)) for k in names}
        same = all(t[k + "/scale"] == scales[k] and np.array_equal(np.clip(np.rint(originals[k] / scales[k]), -127, 127).astype(np.int8), t[k].ravel()) for k in names)
        dense = np.concatenate([(t[k].astype(np.float32) * t[k + "/scale"]).ravel() for k in names])
    else:
        flat = np.concatenate([originals[k].ravel() for k in names])
        dense = np.zeros(flat.size, dtype=np.float32)
        dense[t["topk/indices"]] = t["topk/values"]
        same = bool(np.array_equal(flat[t["topk/indices"]], t["topk/values"]))
    out[scheme] = {"same": bool(same), "dense": [float(x) for x in dense]}
print(json.dumps(out))
`;

describe("compressed update files and NumPy", function () {
  let folder: string;

  before(function () {
    const probe = spawnSync("python3", ["-c", "import numpy"], { encoding: "utf8" });
    if (probe.error || probe.status !== 0) {
      console.log("    skipped: python3 with numpy is not available");
      this.skip();
    }
    folder = mkdtempSync(join(tmpdir(), "anchorfl-compression-"));
  });

  after(() => {
    if (folder) rmSync(folder, { recursive: true, force: true });
  });

  it("NumPy writes the same f16 and i8 bytes and rebuilds the same dense delta for every scheme", () => {
    // Values that exercise rounding: normal, tiny (float16 subnormals) and exact ties for i8.
    const tensors: Tensor[] = [seededTensor("a/kernel", [40, 30], 4), { ...seededTensor("a/bias", [30], 5) }, { name: "b/ties", shape: [6], data: Float32Array.of(127, 2.5, -2.5, 3.5, 0.5, 1e-6) }];
    tensors[1].data.forEach((x, i) => (tensors[1].data[i] = x * 1e-5));
    const originals = Object.fromEntries(tensors.map((t) => [t.name, [...t.data]]));
    writeFileSync(join(folder, "originals.json"), JSON.stringify(originals));
    const options = [{ scheme: "f16" }, { scheme: "i8" }, { scheme: "topk", fraction: 0.1 }] as const;
    const paths = options.map((option) => {
      const path = join(folder, `${option.scheme}.safetensors`);
      writeFileSync(path, encodeUpdate(tensors, sampleMetadata, option));
      return path;
    });
    const read = JSON.parse(execFileSync("python3", ["-c", CHECK, join(folder, "originals.json"), ...paths], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 }));
    const shapes = tensors.map(({ name, shape }) => ({ name, shape }));
    for (const option of options) {
      expect(read[option.scheme].same, `${option.scheme}: NumPy's encoding of the same values`).to.equal(true);
      const ours = flatten(decodeUpdate(encodeUpdate(tensors, sampleMetadata, option), { expected: shapes }).tensors);
      expect(read[option.scheme].dense, `${option.scheme}: the dense delta`).to.deep.equal([...ours]);
    }
  });
});

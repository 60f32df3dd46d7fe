// Interoperability with Python: files we write are read by Python (the `safetensors` package
// when installed, otherwise a NumPy reader written from the format description), and files
// Python writes, unpadded and with data stored out of name order, are read by our decoder.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { decodeSafetensors, encodeSafetensors } from "../../lib/codec/safetensors.js";
import { decodeUpdate, encodeUpdate } from "../../lib/codec/update-file.js";
import { sampleMetadata, sampleTensors } from "./safetensors.fixtures.js";

const READER = String.raw`
import json, struct, sys
import numpy as np
path = sys.argv[1]
try:
    from safetensors import safe_open
    from safetensors.numpy import load_file
    arrays = load_file(path)
    with safe_open(path, framework="numpy") as f:
        metadata = f.metadata() or {}
    used = "safetensors"
except ImportError:
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    metadata = header.pop("__metadata__", {})
    arrays = {}
    for name, info in header.items():
        assert info["dtype"] == "F32"
        begin, end = info["data_offsets"]
        arrays[name] = np.frombuffer(raw[8 + n + begin:8 + n + end], dtype="<f4").reshape(info["shape"])
    used = "numpy"
print(json.dumps({
    "reader": used,
    "metadata": metadata,
    "tensors": {k: {"dtype": str(a.dtype), "shape": list(a.shape), "values": [float(x) for x in a.ravel()]} for k, a in arrays.items()},
}))
`;

// Writes like the reference implementation did before it padded headers, storing tensors in
// reverse name order so offsets do not follow names.
const WRITER = String.raw`
import json, struct, sys
import numpy as np
spec = json.load(sys.stdin)
header = {"__metadata__": spec["metadata"]}
blobs = []
offset = 0
for name in sorted(spec["tensors"], reverse=True):
    t = spec["tensors"][name]
    blob = np.asarray(t["values"], dtype="<f4").reshape(t["shape"]).tobytes()
    header[name] = {"dtype": "F32", "shape": t["shape"], "data_offsets": [offset, offset + len(blob)]}
    offset += len(blob)
    blobs.append(blob)
text = json.dumps(header, separators=(",", ":")).encode()
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
`;

function pythonWithNumpy(): string | undefined {
  const probe = spawnSync("python3", ["-c", "import numpy"], { encoding: "utf8" });
  if (probe.error) return `python3 is not installed (${probe.error.message})`;
  if (probe.status !== 0) return `python3 has no numpy: ${probe.stderr.trim().split("\n").pop()}`;
  return undefined;
}

describe("safetensors files and Python", function () {
  let folder: string;

  before(function () {
    const missing = pythonWithNumpy();
    if (missing) {
      console.log(`    skipped: ${missing}`);
      this.skip();
    }
    folder = mkdtempSync(join(tmpdir(), "anchorfl-safetensors-"));
  });

  after(() => {
    if (folder) rmSync(folder, { recursive: true, force: true });
  });

  it("Python reads the tensors and metadata we write", () => {
    const tensors = sampleTensors(3);
    const path = join(folder, "update.safetensors");
    writeFileSync(path, encodeUpdate(tensors, sampleMetadata));
    const read = JSON.parse(execFileSync("python3", ["-c", READER, path], { encoding: "utf8" }));
    console.log(`    read with Python ${read.reader}`);
    expect(read.metadata).to.include({ anchorfl_format: "anchorfl/1", round: "3", participant: sampleMetadata.participant, train_loss: "0.25" });
    expect(Object.keys(read.tensors).sort()).to.deep.equal(tensors.map((t) => t.name).sort());
    for (const t of tensors) {
      expect(read.tensors[t.name].dtype).to.equal("float32");
      expect(read.tensors[t.name].shape).to.deep.equal(t.shape);
      expect(read.tensors[t.name].values).to.deep.equal([...t.data]);
    }
    // The bytes on disk are what was hashed: reading did not need them changed.
    expect(decodeUpdate(readFileSync(path)).metadata).to.deep.equal(sampleMetadata);
  });

  it("we read a file Python writes, and re-encoding it gives our canonical bytes", () => {
    const tensors = sampleTensors(4);
    const path = join(folder, "from-python.safetensors");
    const spec = { metadata: { source: "python" }, tensors: Object.fromEntries(tensors.map((t) => [t.name, { shape: t.shape, values: [...t.data] }])) };
    execFileSync("python3", ["-c", WRITER, path], { input: JSON.stringify(spec) });
    const bytes = new Uint8Array(readFileSync(path));
    const decoded = decodeSafetensors(bytes, { expected: tensors });
    expect(decoded.metadata).to.deep.equal({ source: "python" });
    for (const t of tensors) {
      const got = decoded.tensors.find((d) => d.name === t.name)!;
      expect([...got.data], t.name).to.deep.equal([...t.data]);
    }
    const canonical = encodeSafetensors(tensors, { source: "python" });
    expect(Buffer.from(encodeSafetensors(decoded.tensors, decoded.metadata)).equals(Buffer.from(canonical))).to.equal(true);
    expect(Buffer.from(bytes).equals(Buffer.from(canonical))).to.equal(false);
  });
});

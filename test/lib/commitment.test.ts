import { expect } from "chai";
import { keccak256, solidityPackedKeccak256 } from "ethers";
import { network } from "hardhat";
import { CommitmentInputError, commitmentOf, randomSalt, type CommitmentInput } from "../../lib/commitment.js";
import { sha256Digest } from "../../lib/digest.js";

const base: CommitmentInput = {
  chainId: 31337n,
  coordinator: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
  taskId: 1n,
  round: 2n,
  participant: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  updateDigest: `0x${"11".repeat(31)}22`,
  salt: `0x${"ee".repeat(32)}`,
};

/** abi.encode by hand: each static field left-padded to one 32-byte word, words concatenated. */
function manualCommitment(c: CommitmentInput): string {
  const word = (hex: string) => hex.toLowerCase().padStart(64, "0");
  const uint = (v: unknown) => word(BigInt(v as bigint).toString(16));
  const words = [uint(c.chainId), word(c.coordinator.slice(2)), uint(c.taskId), uint(c.round), word(c.participant.slice(2)), c.updateDigest.slice(2), c.salt.slice(2)];
  return keccak256(`0x${words.join("")}`);
}

describe("commitment hashing", () => {
  it("equals keccak256 of the hand-built abi.encode of all seven fields", () => {
    expect(commitmentOf(base)).to.equal(manualCommitment(base));
    const big = { ...base, chainId: 2n ** 256n - 1n, taskId: 2n ** 128n + 5n, round: 0n };
    expect(commitmentOf(big)).to.equal(manualCommitment(big));
  });

  it("is not the packed encoding (which would let fields run into each other)", () => {
    const packed = solidityPackedKeccak256(
      ["uint256", "address", "uint256", "uint256", "address", "bytes32", "bytes32"],
      [base.chainId, base.coordinator, base.taskId, base.round, base.participant, base.updateDigest, base.salt],
    );
    expect(commitmentOf(base)).to.not.equal(packed);
  });

  it("changes when any single field changes", () => {
    const flipLast = (hex: string) => `${hex.slice(0, -1)}${hex.endsWith("0") ? "1" : "0"}` as `0x${string}`;
    const variants: CommitmentInput[] = [
      { ...base, chainId: 1n },
      { ...base, coordinator: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512" },
      { ...base, taskId: 2n },
      { ...base, round: 3n },
      { ...base, participant: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC" },
      { ...base, updateDigest: flipLast(base.updateDigest) },
      { ...base, salt: flipLast(base.salt) },
      // Swapping the two addresses must not collide either.
      { ...base, coordinator: base.participant, participant: base.coordinator },
    ];
    const all = [base, ...variants].map(commitmentOf);
    expect(new Set(all).size).to.equal(all.length);
    variants.forEach((v, i) => expect(all[i + 1], `variant ${i}`).to.equal(manualCommitment(v)));
  });

  it("accepts numbers and decimal strings for integers, and any address casing that is valid", () => {
    const loose = { ...base, chainId: 31337, taskId: "1", round: 2, participant: base.participant.toLowerCase() };
    expect(commitmentOf(loose)).to.equal(commitmentOf(base));
  });

  it("refuses malformed fields, naming the field", () => {
    const cases: [Partial<Record<keyof CommitmentInput, unknown>>, string][] = [
      [{ chainId: -1n }, "chainId must be a valid uint256"],
      [{ round: 2n ** 256n }, "round must be a valid uint256"],
      [{ taskId: 1.5 }, "taskId"],
      [{ coordinator: "0x1234" }, "coordinator must be a valid address"],
      [{ participant: "0x70997970c51812dc3A010C7d01b50e0d17dc79C8" }, "participant"],
      [{ updateDigest: "0x1234" }, "updateDigest must be a valid bytes32"],
      [{ salt: `0x${"ee".repeat(33)}` }, "salt must be a valid bytes32"],
    ];
    for (const [change, message] of cases) {
      expect(() => commitmentOf({ ...base, ...change } as CommitmentInput)).to.throw(CommitmentInputError, message);
    }
  });

  it("draws salts as 32 fresh random bytes", () => {
    const salts = Array.from({ length: 200 }, randomSalt);
    for (const s of salts) expect(s).to.match(/^0x[0-9a-f]{64}$/);
    expect(new Set(salts).size).to.equal(salts.length);
    // Every hex digit position varies across 200 draws (a stuck byte would show).
    for (let i = 2; i < 66; i++) expect(new Set(salts.map((s) => s[i])).size, `digit ${i}`).to.be.greaterThan(4);
  });
});

describe("commitment hashing against the coordinator contract", () => {
  it("gives exactly what AnchorCoordinator.commitmentOf computes on chain", async () => {
    const { ethers } = await network.create();
    const coordinator = await ethers.deployContract("AnchorCoordinator");
    const chainId = (await ethers.provider.getNetwork()).chainId;
    const [, alice, bob] = await ethers.getSigners();
    const inputs = [
      { taskId: 1n, round: 0n, participant: alice.address, updateDigest: base.updateDigest, salt: randomSalt() },
      { taskId: 2n ** 200n, round: 7n, participant: bob.address, updateDigest: randomSalt(), salt: randomSalt() },
    ];
    for (const input of inputs) {
      const onChain = await coordinator.commitmentOf(input.taskId, input.round, input.participant, input.updateDigest, input.salt);
      expect(commitmentOf({ chainId, coordinator: await coordinator.getAddress(), ...input })).to.equal(onChain);
    }
  });
});

describe("sha-256 digests", () => {
  it("match the FIPS 180-2 test vectors", () => {
    expect(sha256Digest(new TextEncoder().encode("abc"))).to.equal("0xba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(sha256Digest(new Uint8Array(0))).to.equal("0xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  });

  it("hash only the bytes a view covers", () => {
    const host = new TextEncoder().encode("xabcx");
    expect(sha256Digest(host.subarray(1, 4))).to.equal(sha256Digest(new TextEncoder().encode("abc")));
  });
});

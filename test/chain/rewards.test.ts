import { expect } from "chai";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { AbiCoder, keccak256, concat } from "ethers";
import { allocateRewards, buildRewardsTree, RewardsError } from "../../lib/rewards.js";
import { localAccount } from "../../lib/config.js";

const [a, b, c] = [1, 2, 3].map((i) => localAccount(i).address);

describe("rewards tree", () => {
  it("splits a budget in proportion to weights, rounding down, never over the budget", () => {
    const out = allocateRewards(1000n, [
      { account: a, weight: 1n },
      { account: b, weight: 1n },
      { account: c, weight: 1n },
    ]);
    expect(out.map((x) => x.amount)).to.deep.equal([333n, 333n, 333n]);
    const skewed = allocateRewards(10n ** 18n, [
      { account: a, weight: 600n },
      { account: b, weight: 300n },
      { account: c, weight: 100n },
    ]);
    const byAccount = Object.fromEntries(skewed.map((x) => [x.account, x.amount]));
    expect(byAccount[a]).to.equal(6n * 10n ** 17n);
    expect(byAccount[c]).to.equal(10n ** 17n);
    expect(skewed.reduce((s, x) => s + x.amount, 0n) <= 10n ** 18n).to.equal(true);
  });

  it("is independent of input order and drops zero amounts", () => {
    const shares = [
      { account: c, weight: 5n },
      { account: a, weight: 0n },
      { account: b, weight: 7n },
    ];
    const one = buildRewardsTree(allocateRewards(999n, shares));
    const two = buildRewardsTree(allocateRewards(999n, [...shares].reverse()));
    expect(one.root).to.equal(two.root);
    expect(one.allocations.map((x) => x.account)).to.not.include(a);
  });

  it("refuses duplicates and negative values", () => {
    expect(() => allocateRewards(1n, [{ account: a, weight: 1n }, { account: a.toLowerCase(), weight: 1n }])).to.throw(RewardsError, "twice");
    expect(() => allocateRewards(-1n, [])).to.throw(RewardsError);
    expect(() => allocateRewards(1n, [{ account: a, weight: -1n }])).to.throw(RewardsError);
  });

  it("gives proofs that verify against the root with the contract's leaf encoding", () => {
    const tree = buildRewardsTree(allocateRewards(1000n, [{ account: a, weight: 2n }, { account: b, weight: 1n }, { account: c, weight: 1n }]));
    for (const { account, amount } of tree.allocations) {
      const { proof } = tree.proof(account);
      // leaf = keccak256(bytes.concat(keccak256(abi.encode(account, amount)))), as MerkleProof users do on-chain
      const leaf = keccak256(concat([keccak256(AbiCoder.defaultAbiCoder().encode(["address", "uint256"], [account, amount]))]));
      let node = leaf;
      for (const sibling of proof) node = keccak256(concat([node, sibling].sort()));
      expect(node).to.equal(tree.root);
      expect(StandardMerkleTree.verify(tree.root, ["address", "uint256"], [account, amount], proof)).to.equal(true);
    }
    expect(() => tree.proof(localAccount(9).address)).to.throw(RewardsError, "no reward");
  });

  it("has a zero root when nobody is rewarded", () => {
    const empty = buildRewardsTree(allocateRewards(1000n, []));
    expect(empty.root).to.equal(`0x${"00".repeat(32)}`);
    expect(empty.total).to.equal(0n);
  });
});

// Two processes sending from one key (a swarm member's `client run` and `aggregate`): each reads the
// pending nonce just before sending, so one can send with a nonce the other just used. These tests
// play that on the in-process chain with two independent Wallets holding the same key, each on its
// own ethers provider, and check that sendTransaction re-sends the loser instead of failing.
import { expect } from "chai";
import { BrowserProvider, Network, parseEther, Wallet, type Eip1193Provider } from "ethers";
import { network } from "hardhat";
import { AnchorFLError } from "../../lib/errors.js";
import { ContractRevertError, sendTransaction } from "../../lib/chain/revert.js";
import { DemoToken__factory } from "../../types/ethers-contracts/index.js";

const { ethers, provider: chain } = await network.create();
const interfaces = [DemoToken__factory.createInterface()];

/**
 * An ethers provider of its own over the shared chain, configured like lib/chain/rpc.ts (no response
 * cache), so two of them share no nonce state. `onCount` may hold back the answer to a nonce read,
 * as a slow network would, after the chain has given it.
 */
function view(onCount: (count: string) => Promise<string> = async (count) => count): BrowserProvider {
  const lagging: Eip1193Provider = {
    async request(args) {
      const result = await chain.request(args);
      return args.method === "eth_getTransactionCount" ? onCount(result as string) : result;
    },
  };
  return new BrowserProvider(lagging, new Network("hardhat", 31337n), { cacheTimeout: -1, pollingInterval: 20 });
}

/** A fresh key with gas money and 100 DemoToken, so its first nonce is 0. */
async function fundedKeyAndToken(): Promise<{ key: string; token: string }> {
  const [owner] = await ethers.getSigners();
  const token = await ethers.deployContract("DemoToken", [owner.address]);
  const wallet = Wallet.createRandom();
  await (await owner.sendTransaction({ to: wallet.address, value: parseEther("1") })).wait();
  await (await token.mint(wallet.address, 100n)).wait();
  return { key: wallet.privateKey, token: await token.getAddress() };
}

describe("sendTransaction with two senders on one key", function () {
  it("re-sends the transaction whose nonce the other sender took, and both are mined", async () => {
    const { key, token } = await fundedKeyAndToken();
    const [alice, bob] = [Wallet.createRandom().address, Wallet.createRandom().address];

    // B reads nonce 0 first but hears the answer only after A has mined its transaction with nonce 0.
    let bHasRead!: () => void;
    const bRead = new Promise<void>((resolve) => (bHasRead = resolve));
    let aMined!: () => void;
    const aDone = new Promise<void>((resolve) => (aMined = resolve));
    let held = false;
    const slowB = view(async (count) => {
      if (held) return count;
      held = true;
      bHasRead();
      await aDone;
      return count;
    });
    const tokenA = DemoToken__factory.connect(token, new Wallet(key, view()));
    const tokenB = DemoToken__factory.connect(token, new Wallet(key, slowB));

    let bSends = 0;
    const [receiptA, receiptB] = await Promise.all([
      sendTransaction("transfer to alice", interfaces, async () => {
        await bRead;
        return tokenA.transfer(alice, 1n);
      }).finally(aMined),
      sendTransaction("transfer to bob", interfaces, () => {
        bSends++;
        return tokenB.transfer(bob, 2n);
      }),
    ]);

    expect(receiptA.status).to.equal(1);
    expect(receiptB.status).to.equal(1);
    expect((await receiptA.getTransaction()).nonce).to.equal(0);
    expect((await receiptB.getTransaction()).nonce).to.equal(1);
    expect(bSends, "B's first send collided, the second landed").to.equal(2);
    expect(await tokenA.balanceOf(alice)).to.equal(1n);
    expect(await tokenA.balanceOf(bob)).to.equal(2n);
  });

  it("gives up with a clear error when every nonce it reads is already taken", async () => {
    const { key, token } = await fundedKeyAndToken();
    const wallet = new Wallet(key, view());
    await sendTransaction("first transfer", interfaces, () => DemoToken__factory.connect(token, wallet).transfer(wallet.address, 1n));

    // A view stuck before that transaction, as behind a lagging node: nonce 0 every time.
    const stuck = DemoToken__factory.connect(token, new Wallet(key, view(async () => "0x0")));
    let sends = 0;
    const error = await sendTransaction("stuck transfer", interfaces, () => {
      sends++;
      return stuck.transfer(wallet.address, 1n);
    }).catch((e) => e);
    expect(error).to.be.instanceOf(AnchorFLError);
    expect(error.message).to.include("stuck transfer: another sender took the nonce 5 times in a row");
    expect(sends).to.equal(5);
  });

  it("does not re-send a transaction that reverts", async () => {
    const { key, token } = await fundedKeyAndToken();
    const wallet = new Wallet(key, view());
    let sends = 0;
    const error = await sendTransaction("overdraw", interfaces, () => {
      sends++;
      return DemoToken__factory.connect(token, wallet).transfer(wallet.address, 1_000n);
    }).catch((e) => e);
    expect(error).to.be.instanceOf(ContractRevertError);
    expect(error.errorName).to.equal("ERC20InsufficientBalance");
    expect(sends).to.equal(1);
  });
});

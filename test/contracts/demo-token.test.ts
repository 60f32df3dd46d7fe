// The demo ERC-20: owner mint without limit, a public faucet capped per call, and EIP-2612
// permit (its domain is what the coordinator's depositWithPermit relies on).
import { expect } from "chai";
import { ethers, networkHelpers } from "./fixtures.js";

const CAP = 1_000n * 10n ** 18n;

async function deployToken() {
  const [owner, alice, bob] = await ethers.getSigners();
  const token = await ethers.deployContract("DemoToken", [owner.address]);
  return { token, owner, alice, bob };
}

describe("DemoToken", function () {
  it("is an 18-decimal ERC-20 named for the demo, owned by the deployer's choice", async function () {
    const { token, owner } = await networkHelpers.loadFixture(deployToken);
    expect(await token.name()).to.equal("AnchorFL Demo Token");
    expect(await token.symbol()).to.equal("AFLD");
    expect(await token.decimals()).to.equal(18n);
    expect(await token.owner()).to.equal(owner.address);
    expect(await token.FAUCET_CAP()).to.equal(CAP);
    const domain = await token.eip712Domain();
    expect(domain.name).to.equal("AnchorFL Demo Token");
    expect(domain.version).to.equal("1");
  });

  it("lets the owner mint any amount to anyone, and nobody else", async function () {
    const { token, alice, bob } = await networkHelpers.loadFixture(deployToken);
    await expect(token.mint(alice.address, 10n * CAP)).to.changeTokenBalance(ethers, token, alice, 10n * CAP);
    await expect(token.connect(alice).mint(bob.address, 1n))
      .to.be.revertedWithCustomError(token, "OwnableUnauthorizedAccount")
      .withArgs(alice.address);
  });

  it("hands out up to the cap per faucet call to anyone, refusing zero and more", async function () {
    const { token, bob } = await networkHelpers.loadFixture(deployToken);
    await expect(token.connect(bob).faucet(CAP)).to.changeTokenBalance(ethers, token, bob, CAP);
    await expect(token.connect(bob).faucet(1n)).to.changeTokenBalance(ethers, token, bob, 1n);
    await expect(token.connect(bob).faucet(CAP + 1n))
      .to.be.revertedWithCustomError(token, "FaucetAmountOutOfRange")
      .withArgs(CAP + 1n, CAP);
    await expect(token.connect(bob).faucet(0n))
      .to.be.revertedWithCustomError(token, "FaucetAmountOutOfRange")
      .withArgs(0n, CAP);
    expect(await token.totalSupply()).to.equal(CAP + 1n);
  });
});

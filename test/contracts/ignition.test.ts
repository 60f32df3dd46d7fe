// The Ignition module deploys a working pair: a task created on the deployed coordinator with the
// deployed token accepts stake, and the token owner parameter is honoured.
import { expect } from "chai";
import { network } from "hardhat";
import AnchorFLModule from "../../ignition/modules/AnchorFL.js";

describe("Ignition module AnchorFL", function () {
  it("deploys DemoToken (owned by the deployer) and an empty AnchorCoordinator that works", async function () {
    const { ethers, ignition } = await network.create();
    const [deployer, participant] = await ethers.getSigners();
    const { token, coordinator } = await ignition.deploy(AnchorFLModule);
    expect(await token.owner()).to.equal(deployer.address);
    expect(await coordinator.nextTaskId()).to.equal(1n);

    const coordinatorAddress = await coordinator.getAddress();
    await coordinator.createTask({
      stakeToken: await token.getAddress(),
      minStake: 1n,
      rewardPerRound: 0n,
      aggregatorBond: 1n,
      commitWindow: 60n,
      revealWindow: 60n,
      aggregationWindow: 60n,
      unbondingDelay: 0n,
      maxParticipants: 10n,
      outlierSlashBps: 0n,
      noRevealSlashBps: 0n,
      invalidSlashBps: 0n,
      duplicateSlashBps: 0n,
      dissentPenaltyBps: 0n,
      quorum: 1n,
      genesisModelDigest: ethers.id("genesis"),
      modelSpecDigest: ethers.id("spec"),
      aggregators: [deployer.address],
    });
    const asParticipant = {
      token: await ethers.getContractAt("DemoToken", await token.getAddress(), participant),
      coordinator: await ethers.getContractAt("AnchorCoordinator", coordinatorAddress, participant),
    };
    await asParticipant.token.faucet(100n);
    await asParticipant.token.approve(coordinatorAddress, 100n);
    await expect(asParticipant.coordinator.deposit(1n, 100n))
      .to.emit(coordinator, "Deposited")
      .withArgs(1n, participant.address, 100n, 100n);
  });

  it("takes the token owner as a parameter", async function () {
    const { ethers, ignition } = await network.create();
    const [, , owner] = await ethers.getSigners();
    const { token } = await ignition.deploy(AnchorFLModule, {
      parameters: { AnchorFL: { owner: owner.address } },
    });
    expect(await token.owner()).to.equal(owner.address);
  });
});

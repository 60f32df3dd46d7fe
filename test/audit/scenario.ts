// A scripted task history with real transactions, for the audit and dashboard tests. It runs on
// any chain that accepts Hardhat's time RPCs (the in-process chain or a `hardhat node`):
//   round 1: 3 commits (closing the commit phase early), 3 reveals (closing reveal early), one
//            aggregator submits a dissenting result, two agree and finalize; participant 3 is
//            slashed as an outlier; participant 1 claims; the dissenter is penalised; participant
//            2 requests and makes a withdrawal;
//   round 2: participant 4 commits and withholds its reveal; it is slashed (NoReveal) by anyone,
//            the round finalizes with its no-reveal verdict;
//   rounds 3..n: plain finalized rounds whose updates carry training telemetry; participant 3's
//            local loss rises, so the report flags it (flags never change a verdict); then one
//            round fails (nobody commits) and the next is left open for commits (its opening
//            releases the failed round's budget).
// Each finalized round stores a real report (encodeReport) and model file in the given store.
import { AbiCoder, keccak256, type Signer } from "ethers";
import { slashReasonCode } from "../../lib/chain/coordinator.js";
import { commitmentOf } from "../../lib/commitment.js";
import { encodeUpdate } from "../../lib/codec/update-file.js";
import { sha256Digest, type Hex32 } from "../../lib/digest.js";
import { readTelemetry, telemetryFindings } from "../../lib/aggregator/telemetry.js";
import type { TelemetryOption } from "../../lib/protocol/options.js";
import { REPORT_FORMAT, encodeReport, type AggregationReport, type ReportParticipant } from "../../lib/protocol/report.js";
import { allocateRewards, buildRewardsTree } from "../../lib/rewards.js";
import { ZERO_ROOT, type ContentStore } from "../../lib/store/index.js";
import { AnchorCoordinator__factory, DemoToken__factory, type AnchorCoordinator, type DemoToken } from "../../types/ethers-contracts/index.js";

export const TOKEN = 10n ** 18n;
export const STAKE = 1_000n * TOKEN;
export const BUDGET = 100n * TOKEN;
export const OUTLIER_BPS = 1_000n;
export const NO_REVEAL_BPS = 2_000n;
export const DISSENT_BPS = 1_000n;
export const WINDOW = 600n;
/** The telemetry option the plain rounds' reports are judged with: the defaults (flag a loss that more than doubles). */
const TELEMETRY_OPTION: TelemetryOption = {};

type Account = Signer & { address: string };

/** Something that takes Hardhat's JSON-RPC extensions (both the in-process provider and a JsonRpcProvider do). */
interface TimeTravel {
  send(method: string, params: unknown[]): Promise<unknown>;
}

export interface ScenarioWorld {
  readonly coordinator: AnchorCoordinator;
  readonly token: DemoToken;
  readonly taskId: bigint;
  readonly deployBlock: number;
  readonly chainId: bigint;
  readonly owner: Account;
  /** [a1, a2, dissenter] */
  readonly aggregators: readonly Account[];
  /** [p1, p2, p3 (outlier), p4 (withholds in round 2)] */
  readonly participants: readonly Account[];
  /** Report of each finalized round, by round number. */
  readonly reports: Map<bigint, { report: AggregationReport; digest: Hex32; modelDigest: Hex32 }>;
  readonly accuracy: readonly number[];
}

async function mined(tx: Promise<{ wait(): Promise<unknown> }>): Promise<void> {
  await (await tx).wait();
}

async function advance(provider: TimeTravel, seconds: bigint): Promise<void> {
  await provider.send("evm_increaseTime", [Number(seconds)]);
  await provider.send("evm_mine", []);
}

/** The scenario's task config. */
export function taskConfig(token: string, aggregators: string[], quorum: bigint) {
  return {
    stakeToken: token,
    minStake: 100n * TOKEN,
    rewardPerRound: BUDGET,
    aggregatorBond: 500n * TOKEN,
    commitWindow: WINDOW,
    revealWindow: WINDOW,
    aggregationWindow: WINDOW,
    unbondingDelay: 0n,
    maxParticipants: 3n,
    outlierSlashBps: OUTLIER_BPS,
    noRevealSlashBps: NO_REVEAL_BPS,
    invalidSlashBps: 5_000n,
    duplicateSlashBps: 3_000n,
    dissentPenaltyBps: DISSENT_BPS,
    quorum,
    genesisModelDigest: sha256Digest(new TextEncoder().encode("genesis")),
    modelSpecDigest: sha256Digest(new TextEncoder().encode("spec")),
    aggregators,
  };
}

/** Deploys the token and coordinator, creates and funds the task, stakes participants and bonds aggregators. */
export async function setUpWorld(owner: Account, aggregators: Account[], participants: Account[]): Promise<Omit<ScenarioWorld, "reports" | "accuracy">> {
  const token = await new DemoToken__factory(owner).deploy(owner.address);
  await token.waitForDeployment();
  const coordinator = await new AnchorCoordinator__factory(owner).deploy();
  const receipt = await coordinator.deploymentTransaction()!.wait();
  const address = await coordinator.getAddress();
  for (const s of [...aggregators, ...participants]) {
    await mined(token.mint(s.address, 10_000n * TOKEN));
    await mined(token.connect(s).approve(address, 2n ** 255n));
  }
  await mined(token.mint(owner.address, 100_000n * TOKEN));
  await mined(token.approve(address, 2n ** 255n));
  await mined(coordinator.createTask(taskConfig(await token.getAddress(), aggregators.map((a) => a.address), 2n)));
  const taskId = 1n;
  await mined(coordinator.fund(taskId, 2_000n * TOKEN));
  for (const p of participants) await mined(coordinator.connect(p).deposit(taskId, STAKE));
  for (const a of aggregators) await mined(coordinator.connect(a).bondAggregator(taskId));
  const chainId = (await owner.provider!.getNetwork()).chainId;
  return { coordinator, token, taskId, deployBlock: receipt!.blockNumber, chainId, owner, aggregators, participants };
}

interface Entry {
  readonly who: Account;
  readonly verdict: ReportParticipant["verdict"];
  readonly reveal: boolean;
  /** The update file's telemetry metadata (`extra`), as a client writes it; absent: the file carried none. */
  readonly extra?: Readonly<Record<string, string>>;
}

/** A participant's telemetry claims as a client writes them; a rising loss is the implausible claim the report flags. */
function trainingExtra(lossBefore: number, lossAfter: number, wallMs: number): Record<string, string> {
  return { loss_before: lossBefore.toPrecision(6), loss_after: lossAfter.toPrecision(6), epochs: "1", wall_ms: String(wallMs), backend: "wasm" };
}

/** What the aggregator's policy adds to a valid update's report entry: its parsed telemetry and, with the option, the flags. */
function reportedTelemetry(extra: Readonly<Record<string, string>> | undefined): Pick<ReportParticipant, "telemetry" | "evidence"> {
  if (!extra) return {};
  const flags = telemetryFindings(600, extra, TELEMETRY_OPTION).flags;
  return { telemetry: readTelemetry(extra).telemetry, ...(flags.length > 0 ? { evidence: { telemetryFlags: flags.join("; ") } } : {}) };
}

function salt(address: string, round: bigint): Hex32 {
  return keccak256(AbiCoder.defaultAbiCoder().encode(["string", "address", "uint256"], ["salt", address, round])) as Hex32;
}

function updateDigest(address: string, round: bigint): Hex32 {
  return sha256Digest(new TextEncoder().encode(`update ${address} ${round}`));
}

/** Runs one round to finalization with real commits, reveals and results; stores its report and model. */
async function finalizedRound(
  w: Omit<ScenarioWorld, "reports" | "accuracy">,
  store: ContentStore,
  provider: TimeTravel,
  entries: readonly Entry[],
  accuracy: number,
  options: { dissent?: boolean; claimBy?: Account } = {},
) {
  const c = w.coordinator;
  const coordinatorAddress = await c.getAddress();
  const round = (await c.taskInfo(w.taskId)).currentRound;
  const baseModelDigest = (await c.globalModel(w.taskId)) as Hex32;
  for (const e of entries) {
    const commitment = commitmentOf({
      chainId: w.chainId,
      coordinator: coordinatorAddress,
      taskId: w.taskId,
      round,
      participant: e.who.address,
      updateDigest: updateDigest(e.who.address, round),
      salt: salt(e.who.address, round),
    });
    await mined(c.connect(e.who).commit(w.taskId, round, commitment));
  }
  for (const e of entries.filter((x) => x.reveal)) {
    await mined(c.connect(e.who).reveal(w.taskId, round, updateDigest(e.who.address, round), 600n, salt(e.who.address, round), ZERO_ROOT));
  }
  if (entries.some((e) => !e.reveal)) {
    await advance(provider, WINDOW + 1n);
    for (const e of entries.filter((x) => !x.reveal)) await mined(c.connect(w.owner).slashNoReveal(w.taskId, round, e.who.address));
  }
  const model = await store.put(
    encodeUpdate([{ name: "w", shape: [2], data: Float32Array.from([accuracy, Number(round)]) }], {
      taskId: w.taskId,
      round,
      participant: w.aggregators[0].address,
      baseModelDigest,
      numSamples: 600 * entries.filter((e) => e.verdict === "accepted").length,
      kind: "model",
      modelSpecDigest: sha256Digest(new TextEncoder().encode("spec")),
      extra: {},
    }),
  );
  await store.pin(model.cid);
  const accepted = entries.filter((e) => e.verdict === "accepted");
  const allocations = allocateRewards(BUDGET, accepted.map((e) => ({ account: e.who.address, weight: 600n })));
  const tree = buildRewardsTree(allocations);
  const slashes = entries
    .filter((e) => e.verdict !== "accepted")
    .map((e) => ({ participant: e.who.address, reason: e.verdict === "no-reveal" ? ("NoReveal" as const) : ("Outlier" as const) }));
  const sorted = [...entries].sort((a, b) => (a.who.address.toLowerCase() < b.who.address.toLowerCase() ? -1 : 1));
  const report: AggregationReport = {
    format: REPORT_FORMAT,
    chainId: w.chainId.toString(),
    coordinator: coordinatorAddress,
    taskId: w.taskId.toString(),
    round: round.toString(),
    baseModelDigest,
    modelSpecDigest: sha256Digest(new TextEncoder().encode("spec")),
    rule: { name: "trimmed-mean", params: { trim: 1 } },
    policy: { name: "distance-threshold", params: { factor: 3 } },
    participants: sorted.map((e) =>
      e.verdict === "no-reveal"
        ? { address: e.who.address, verdict: "no-reveal", reason: "committed but did not reveal before the reveal deadline" }
        : {
            address: e.who.address,
            verdict: e.verdict,
            reason: e.verdict === "outlier" ? "update is 41.3 times the median distance from the aggregate (threshold 3)" : "within the accepted distance",
            updateDigest: updateDigest(e.who.address, round),
            contentRoot: ZERO_ROOT,
            numSamples: "600",
            score: e.verdict === "outlier" ? 41.3 : 0.9,
            ...reportedTelemetry(e.extra),
          },
    ),
    model: { digest: model.digest, contentRoot: model.contentRoot, numSamples: String(600 * accepted.length) },
    rewards: {
      budget: BUDGET.toString(),
      total: tree.total.toString(),
      root: tree.root,
      allocations: allocations.map((a) => ({ account: a.account, amount: a.amount.toString() })),
    },
    slashes,
    evaluation: { dataset: "mnist-test", examples: 1000, accuracy, loss: 2 * (1 - accuracy) },
    software: { name: "anchorfl", version: "0.1.0" },
  };
  const reportFile = await store.put(encodeReport(report));
  await store.pin(reportFile.cid);
  const result = {
    newModelDigest: model.digest,
    reportDigest: reportFile.digest,
    rewardsRoot: tree.root,
    rewardsTotal: tree.total,
    slashes: slashes.map((s) => ({ participant: s.participant, reason: slashReasonCode(s.reason) })),
  };
  if (options.dissent) {
    const other = { ...result, newModelDigest: sha256Digest(new TextEncoder().encode("another model")), reportDigest: sha256Digest(new TextEncoder().encode("another report")) };
    await mined(c.connect(w.aggregators[2]).submitResult(w.taskId, round, other));
  }
  await mined(c.connect(w.aggregators[0]).submitResult(w.taskId, round, result));
  await mined(c.connect(w.aggregators[1]).submitResult(w.taskId, round, result));
  if (options.claimBy) {
    const { amount, proof } = tree.proof(options.claimBy.address);
    await mined(c.connect(options.claimBy).claim(w.taskId, round, amount, proof));
  }
  return { report, digest: reportFile.digest, modelDigest: model.digest };
}

/** The whole scripted history (see the module comment). `finalized` >= 2 rounds finalize before the failed one. */
export async function runScenario(
  signers: { owner: Account; aggregators: Account[]; participants: Account[] },
  store: ContentStore,
  provider: TimeTravel,
  finalized = 2,
): Promise<ScenarioWorld> {
  const base = await setUpWorld(signers.owner, signers.aggregators, signers.participants);
  const [p1, p2, p3, p4] = signers.participants;
  const c = base.coordinator;
  const reports: ScenarioWorld["reports"] = new Map();
  const accuracy = Array.from({ length: finalized }, (_, i) => Number((0.62 + (0.3 * (1 - 0.55 ** (i + 1))) / 0.9).toFixed(4)));

  await mined(c.openRound(base.taskId));
  reports.set(
    1n,
    await finalizedRound(
      base,
      store,
      provider,
      [
        { who: p1, verdict: "accepted", reveal: true },
        { who: p2, verdict: "accepted", reveal: true },
        { who: p3, verdict: "outlier", reveal: true },
      ],
      accuracy[0],
      { dissent: true, claimBy: p1 },
    ),
  );
  await mined(c.penalizeDissent(base.taskId, signers.aggregators[2].address));
  await mined(c.connect(p2).requestWithdrawal(base.taskId, 200n * TOKEN));
  await mined(c.connect(p2).withdraw(base.taskId));

  await mined(c.openRound(base.taskId));
  reports.set(
    2n,
    await finalizedRound(
      base,
      store,
      provider,
      [
        { who: p1, verdict: "accepted", reveal: true },
        { who: p2, verdict: "accepted", reveal: true },
        { who: p4, verdict: "no-reveal", reveal: false },
      ],
      accuracy[1],
    ),
  );
  for (let r = 3; r <= finalized; r++) {
    await mined(c.openRound(base.taskId));
    const extra = [trainingExtra(2.30259, 0.61 - 0.02 * r, 400 + r), trainingExtra(2.29871, 0.58 - 0.02 * r, 380 + r), trainingExtra(0.5, 1.9, 350 + r)];
    const entries = [p1, p2, p3].map((who, i) => ({ who, verdict: "accepted" as const, reveal: true, extra: extra[i] }));
    reports.set(BigInt(r), await finalizedRound(base, store, provider, entries, accuracy[r - 1]));
  }
  await mined(c.openRound(base.taskId));
  await advance(provider, 3n * WINDOW + 1n);
  await mined(c.openRound(base.taskId));
  return { ...base, reports, accuracy };
}

// Turning a task history into what people and machines read: aligned text with one section per
// round, and JSON with bigints as decimal strings. Pure functions of the history.
import { formatUnits } from "ethers";
import type { ReportParticipant } from "../protocol/report.js";
import { cidFromChain, ZERO_ROOT } from "../store/index.js";
import { AuditError, type TaskEvent } from "./events.js";
import type { RoundRecord, TaskHistory, TokenInfo } from "./history.js";

/** JSON with bigints as decimal strings; key order follows the history's construction, so output is stable. */
export function historyJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? v.toString() : v), 2);
}

/** The history with only `round` among its rounds. */
export function selectRound(history: TaskHistory, round: bigint): TaskHistory {
  const picked = history.rounds.filter((r) => r.round === round);
  if (picked.length === 0) {
    const opened = history.rounds.length === 0 ? "none yet" : `1..${history.currentRound}`;
    throw new AuditError(`task ${history.taskId} has no round ${round} (rounds opened: ${opened})`);
  }
  return { ...history, rounds: picked };
}

/** Token amounts in whole tokens ("12.5 DEMO"), or base units when the token does not say its decimals. */
export function formatAmount(amount: bigint, token: Pick<TokenInfo, "symbol" | "decimals">): string {
  if (token.decimals === null) return `${amount} units`;
  const text = formatUnits(amount, token.decimals).replace(/\.0$/, "");
  return token.symbol ? `${text} ${token.symbol}` : text;
}

/** Unix seconds as "2026-11-29 12:00:05 UTC". */
export function formatTime(unix: number | bigint): string {
  return `${new Date(Number(unix) * 1000).toISOString().replace("T", " ").replace(/\.\d{3}Z$/, "")} UTC`;
}

/** Basis points as a percentage ("12.5%"). */
export function formatBps(bps: bigint): string {
  return `${(Number(bps) / 100).toString()}%`;
}

/**
 * Control characters shown as \u escapes: report texts are written by aggregators, and a newline or
 * a terminal escape sequence in them must neither break the table nor repaint the auditor's screen.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Rows as columns padded to their widest cell (the last column is not padded). */
export function alignColumns(rows: readonly (readonly string[])[], indent = "  "): string[] {
  const cells = rows.map((row) => row.map(printable));
  const widths: number[] = [];
  for (const row of cells) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return cells.map((row) => indent + row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join("  ").trimEnd());
}

function block(title: string, header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  if (rows.length === 0) return [`  ${title}: none`];
  return [`  ${title} (${rows.length})`, ...alignColumns([header, ...rows], "    ")];
}

/** One line per ledger event: who, how much, and what it left behind. */
function ledgerRow(e: TaskEvent, token: TokenInfo): string[] {
  const amount = (x: bigint) => formatAmount(x, token);
  const at = [String(e.block), formatTime(e.time)];
  switch (e.kind) {
    case "TaskCreated":
      return [...at, e.kind, e.owner, "", `config: see above`, e.tx];
    case "TaskOwnershipTransferred":
      return [...at, e.kind, e.newOwner, "", `from ${e.previousOwner}`, e.tx];
    case "RewardsFunded":
      return [...at, e.kind, e.funder, amount(e.amount), `escrow ${amount(e.escrowAfter)}`, e.tx];
    case "Deposited":
      return [...at, e.kind, e.participant, amount(e.amount), `stake ${amount(e.stakeAfter)}`, e.tx];
    case "WithdrawalRequested":
      return [...at, e.kind, e.participant, amount(e.amount), `pending ${amount(e.pendingAfter)}, unlocks ${formatTime(e.unlockAt)}`, e.tx];
    case "Withdrawn":
      return [...at, e.kind, e.participant, amount(e.amount), `stake ${amount(e.stakeAfter)}`, e.tx];
    case "AggregatorBonded":
      return [...at, e.kind, e.aggregator, amount(e.amount), `bond ${amount(e.bondAfter)}`, e.tx];
    case "AggregatorUnbonded":
      return [...at, e.kind, e.aggregator, amount(e.amount), "bond 0", e.tx];
    default:
      return [...at, e.kind, "", "", "", e.tx];
  }
}

function headerLines(h: TaskHistory): string[] {
  const c = h.created.config;
  const amount = (x: bigint) => formatAmount(x, h.token);
  const current = h.rounds.at(-1);
  const tokenName = [h.token.symbol, h.token.decimals === null ? null : `${h.token.decimals} decimals`].filter(Boolean).join(", ");
  return [
    `Task ${h.taskId} on chain ${h.chainId}, coordinator ${h.coordinator}, as of block ${h.asOf.block} (${formatTime(h.asOf.time)})`,
    ...alignColumns([
      ["created", `block ${h.created.block} at ${formatTime(h.created.time)} by ${h.created.owner}, tx ${h.created.tx}`],
      ["owner", h.owner],
      ["stake token", `${c.stakeToken}${tokenName ? ` (${tokenName})` : ""}`],
      ["stake", `min ${amount(c.minStake)} to commit, unbonding ${c.unbondingDelay} s; aggregator bond ${amount(c.aggregatorBond)}`],
      ["rounds", `reward ${amount(c.rewardPerRound)} each; windows commit ${c.commitWindow} s, reveal ${c.revealWindow} s, aggregation ${c.aggregationWindow} s; max ${c.maxParticipants} participants`],
      [
        "slashing",
        `outlier ${formatBps(c.outlierSlashBps)}, no-reveal ${formatBps(c.noRevealSlashBps)}, invalid ${formatBps(c.invalidSlashBps)}, duplicate ${formatBps(c.duplicateSlashBps)}; aggregator dissent ${formatBps(c.dissentPenaltyBps)}`,
      ],
      ["aggregators", `${c.aggregators.join(", ")} (quorum ${c.quorum})`],
      ["model spec", c.modelSpecDigest],
      // The genesis model is always one raw block (task creation insists), so its digest is its CID.
      ["genesis model", cidFromChain(c.genesisModelDigest, ZERO_ROOT)],
      ["now", current ? `round ${current.round} (${current.phase})` : "no round opened yet"],
      ["global model", `${modelText(h.globalModel.digest, h.globalModel.cid)} (${h.globalModel.round === 0n ? "genesis" : `round ${h.globalModel.round}`})`],
      ["reward escrow", amount(h.escrow)],
    ]),
  ];
}

function modelText(digest: string, cid: string | null): string {
  return cid ?? `${digest} (CID unknown: its report is unavailable)`;
}

function accountLines(h: TaskHistory): string[] {
  const amount = (x: bigint) => formatAmount(x, h.token);
  return [
    "",
    "Ledger (stake, funding, bonds)",
    ...alignColumns([["block", "time", "event", "account", "amount", "detail", "tx"], ...h.ledger.map((e) => ledgerRow(e, h.token))]),
    "",
    "Participants",
    ...alignColumns([
      ["address", "stake", "pending", "deposited", "withdrawn", "slashed", "claimed", "commits", "reveals"],
      ...h.participants.map((p) => [
        p.address,
        amount(p.stake),
        amount(p.pendingWithdrawal),
        amount(p.deposited),
        amount(p.withdrawn),
        p.slashCount ? `${amount(p.slashed)} (${p.slashCount}x)` : "0",
        amount(p.claimed),
        String(p.commits),
        String(p.reveals),
      ]),
    ]),
    "",
    "Aggregators",
    ...alignColumns([
      ["address", "member", "bond", "penalized", "submissions"],
      ...h.aggregators.map((a) => [a.address, a.member ? "yes" : "no", amount(a.bond), amount(a.penalized), String(a.submissions)]),
    ]),
  ];
}

function deadlineText(r: RoundRecord): string {
  const early = (phase: string) => r.closedEarly.find((e) => e.phase === phase);
  const part = (name: string, end: bigint, phase: string) => `${name} ${formatTime(end)}${early(phase) ? " (closed early)" : ""}`;
  return [part("commit", r.commitEnd, "Commit"), part("reveal", r.revealEnd, "Reveal"), `aggregation ${formatTime(r.aggregationEnd)}`].join(", ");
}

/** The quorum's record: whether it was reached, who agreed with the final result, who dissented and what it cost. */
function agreementLines(r: RoundRecord, amount: (x: bigint) => string): string[] {
  const a = r.agreement;
  if (a.positions.length === 0) return [];
  const count = (position: string) => a.positions.filter((p) => p.position === position).length;
  const head = a.reached
    ? `quorum ${a.quorum} reached: ${count("agreed")} agreed, ${count("dissented")} dissented`
    : `quorum ${a.quorum} not reached${r.phase === "Aggregation" ? " yet" : ""}: ${a.positions.length} result(s) submitted`;
  return [
    `  agreement: ${head}`,
    ...alignColumns(
      [
        ["aggregator", "position", "result hash", "penalty"],
        ...a.positions.map((p) => [p.aggregator, p.position, p.resultHash, p.penalty === null ? (p.position === "dissented" ? "not yet applied" : "") : amount(p.penalty)]),
      ],
      "    ",
    ),
  ];
}

function reportSummary(r: RoundRecord): string | null {
  if (!r.report) return r.finalized ? "not fetched (no content store)" : null;
  if (r.report.status !== "ok") return `${r.report.status}: ${r.report.error}`;
  const rep = r.report.report;
  const counts = new Map<string, number>();
  for (const p of rep.participants) counts.set(p.verdict, (counts.get(p.verdict) ?? 0) + 1);
  const verdicts = [...counts].map(([v, n]) => `${n} ${v}`).join(", ");
  const evaluation = rep.evaluation
    ? `; accuracy ${(rep.evaluation.accuracy * 100).toFixed(2)}%, loss ${rep.evaluation.loss.toFixed(4)} on ${rep.evaluation.dataset} (${rep.evaluation.examples} examples)`
    : "";
  // The optimiser and the state files the round depends on (verify re-runs it from them).
  const optimizer = rep.optimizer ? ` + ${rep.optimizer.name}` : "";
  const state = rep.state?.length ? `; state ${rep.state.map((x) => `${x.name} ${x.digest.slice(0, 10)}…`).join(", ")}` : "";
  return `${r.report.cid}: rule ${rep.rule.name}${optimizer}, policy ${rep.policy.name}; ${verdicts || "no participants"}${evaluation}${state}`;
}

/** A participant's self-reported training in one cell, e.g. "2.303→0.9123, 412 ms, wasm" ("" when its file carried none). */
export function telemetryText(p: ReportParticipant): string {
  const t = p.telemetry;
  if (!t) return "";
  const loss = t.lossBefore !== undefined || t.lossAfter !== undefined ? `${t.lossBefore?.toPrecision(4) ?? "?"}→${t.lossAfter?.toPrecision(4) ?? "?"}` : "";
  const parts = [loss, t.wallMs !== undefined ? `${t.wallMs} ms` : "", t.backend ?? "", t.epochs !== undefined && t.epochs !== 1 ? `${t.epochs} epochs` : ""];
  const flags = p.evidence?.telemetryFlags;
  return [...parts.filter(Boolean), ...(typeof flags === "string" ? [`flagged: ${flags}`] : [])].join(", ");
}

/** The anomaly detector's score, marked when it flagged the update ("" when the task has no detector). */
export function anomalyText(p: ReportParticipant): string {
  const score = p.evidence?.anomalyScore;
  if (typeof score !== "number") return "";
  return `${score.toPrecision(3)}${p.evidence?.anomalyFlagged === true ? " flagged" : ""}`;
}

/** One round's section; with `verdicts`, the report's per-participant verdicts and reasons too. */
export function formatRound(h: TaskHistory, r: RoundRecord, verdicts = false): string[] {
  const amount = (x: bigint) => formatAmount(x, h.token);
  const o = r.opened;
  const lines = [
    "",
    `Round ${r.round}: ${r.phase}`,
    ...alignColumns([
      ["opened", `block ${o.block} at ${formatTime(o.time)}, budget ${amount(o.budget)}, base model ${modelText(o.baseModelDigest, r.baseModel.cid)}, tx ${o.tx}`],
      ["deadlines", deadlineText(r)],
    ]),
    ...block(
      "commits",
      ["block", "participant", "commitment", "tx"],
      r.commits.map((e) => [String(e.block), e.participant, e.commitment, e.tx]),
    ),
    ...block(
      "reveals",
      ["block", "participant", "samples", "update CID", "tx"],
      r.reveals.map((e) => [String(e.block), e.participant, String(e.numSamples), e.cid, e.tx]),
    ),
    ...block(
      "results",
      ["block", "aggregator", "votes", "result hash", "rewards", "slash list", "tx"],
      r.results.map((e) => [
        String(e.block),
        e.aggregator,
        String(e.votes),
        e.resultHash,
        amount(e.rewardsTotal),
        e.slashes.length ? e.slashes.map((s) => `${s.participant} ${s.reason}`).join("; ") : "none",
        e.tx,
      ]),
    ),
    ...agreementLines(r, amount),
  ];
  const f = r.finalized;
  const outcome: string[][] = [];
  if (f) {
    outcome.push(["finalized", `block ${f.block} at ${formatTime(f.time)}, tx ${f.tx}`]);
    outcome.push(["model", modelText(f.newModelDigest, r.model?.cid ?? null)]);
    outcome.push(["report", f.reportCid]);
    outcome.push(["rewards", `${amount(f.rewardsTotal)} claimable (root ${f.rewardsRoot}), ${amount(f.returnedToEscrow)} back to the escrow`]);
  }
  if (r.budgetReleased) outcome.push(["released", `budget ${amount(r.budgetReleased.budget)} back to the escrow in block ${r.budgetReleased.block}, tx ${r.budgetReleased.tx}`]);
  const summary = reportSummary(r);
  if (summary) outcome.push(["report says", summary]);
  lines.push(...alignColumns(outcome));
  lines.push(
    ...block(
      "slashes",
      ["block", "participant", "reason", "amount", "tx"],
      r.slashes.map((e) => [String(e.block), e.participant, e.reason, amount(e.amount), e.tx]),
    ),
    ...block(
      "claims",
      ["block", "account", "amount", "tx"],
      r.claims.map((e) => [String(e.block), e.account, amount(e.amount), e.tx]),
    ),
    ...block(
      "aggregator penalties",
      ["block", "aggregator", "amount", "bond after", "tx"],
      r.penalties.map((e) => [String(e.block), e.aggregator, amount(e.amount), amount(e.bondAfter), e.tx]),
    ),
  );
  if (verdicts && r.report?.status === "ok") {
    lines.push(
      ...block(
        "verdicts",
        ["participant", "verdict", "score", "samples", "training (loss before→after, ms, backend)", "anomaly", "reason"],
        r.report.report.participants.map((p) => [
          p.address,
          p.verdict,
          p.score === undefined ? "" : p.score.toPrecision(4),
          p.numSamples ?? "",
          telemetryText(p),
          anomalyText(p),
          p.reason,
        ]),
      ),
    );
    const rep = r.report.report.reputation;
    if (rep) {
      const read = rep.history.map((x) => x.round).join(", ") || "none finalized";
      const use = `${rep.weighted ? "weights the rule's samples" : "no weighting"}${rep.select === undefined ? "" : `; top ${rep.select} aggregated`}`;
      lines.push(
        `  reputation: window rounds ${rep.window.from}..${rep.window.to} (finalized: ${read}), half-life ${rep.params.halfLife}, prior ${rep.params.prior} x ${rep.params.priorWeight}; ${use}`,
        ...alignColumns([["participant", "reputation", "aggregated"], ...rep.scores.map((x) => [x.address, String(x.reputation), x.aggregated ? "yes" : "no"])], "    "),
      );
    }
  }
  return lines;
}

/** The whole history as text: the task, its ledger and accounts, then one section per round. */
export function formatHistory(h: TaskHistory): string {
  return [...headerLines(h), ...accountLines(h), ...h.rounds.flatMap((r) => formatRound(h, r))].join("\n");
}

/** One round in detail, with the report's verdicts and reasons (or why the report is missing). */
export function formatRoundReport(h: TaskHistory, round: bigint): string {
  const r = selectRound(h, round).rounds[0];
  return [...headerLines(h), ...formatRound(h, r, true)].join("\n");
}

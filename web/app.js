// The dashboard page: polls the server's JSON API (the same history `anchorfl audit --json`
// prints) every 2 s, re-reads a task whenever a new block arrives, and draws tasks, rounds,
// participants, slashes with their reasons and the accuracy curve. Everything shown comes from
// the chain or from reports, which anyone can write, so text is only ever set as text.
"use strict";

const POLL_MS = 2000;
const state = { selected: null, renderedKey: null, lastOk: null };

/** Creates an element; attributes set as attributes, children appended as nodes or text. */
function el(tag, attrs, ...children) {
  const svg = ["svg", "polyline", "circle", "line", "text", "title", "g", "rect"].includes(tag);
  const node = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
  return node;
}

function formatAmount(value, token) {
  if (value === null || value === undefined) return "";
  if (token.decimals === null) return `${value} units`;
  const v = BigInt(value);
  const negative = v < 0n;
  const abs = negative ? -v : v;
  const scale = 10n ** BigInt(token.decimals);
  const whole = abs / scale;
  // Four decimals are plenty to read; the exact figure is in the JSON API and `anchorfl audit --json`.
  const fraction = (abs % scale).toString().padStart(token.decimals, "0").slice(0, 4).replace(/0+$/, "");
  const text = `${negative ? "-" : ""}${whole.toLocaleString("en-US")}${fraction ? `.${fraction}` : ""}`;
  return token.symbol ? `${text} ${token.symbol}` : text;
}

function formatTime(unix) {
  return new Date(Number(unix) * 1000).toISOString().replace("T", " ").replace(/\.\d{3}Z$/, " UTC");
}

function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** An address or hash shortened for reading, in full on hover and when copied. */
function short(hex) {
  return el("code", { class: "hex", title: hex }, `${hex.slice(0, 8)}…${hex.slice(-6)}`);
}

function cidLink(cid, label) {
  if (!cid) return el("span", { class: "muted", title: "CID unknown: the report naming this model is unavailable" }, "unknown");
  return el("a", { href: `/ipfs/${cid}`, class: "cid", title: cid, target: "_blank", rel: "noopener" }, label || `${cid.slice(0, 9)}…${cid.slice(-4)}`);
}

function table(headers, rows, attrs) {
  return el(
    "table",
    attrs,
    el("thead", null, el("tr", null, headers.map((h) => el("th", null, h)))),
    el("tbody", null, rows.length ? rows : el("tr", null, el("td", { colspan: headers.length, class: "muted" }, "none yet"))),
  );
}

function section(title, ...content) {
  return el("section", { class: "card" }, el("h2", null, title), ...content);
}

async function getJson(path) {
  let response;
  try {
    response = await fetch(path, { cache: "no-store" });
  } catch (error) {
    throw { kind: "server", message: `the dashboard server does not answer (${error.message})`, hint: "is `anchorfl dashboard` still running?" };
  }
  const body = await response.json().catch(() => null);
  if (!response.ok || !body) throw (body && body.error) || { kind: "server", message: `HTTP ${response.status} from ${path}` };
  return body;
}

const ERROR_TITLES = {
  rpc: "Cannot reach the chain",
  deployment: "No deployment",
  coordinator: "No coordinator",
  store: "Content store unavailable",
  server: "Dashboard server unreachable",
};

function showError(error) {
  const box = document.getElementById("error");
  box.hidden = false;
  box.replaceChildren(
    el("strong", null, ERROR_TITLES[error.kind] || "Error"),
    el("span", { class: "message" }, ` ${error.message}`),
    error.hint ? el("div", { class: "hint" }, `hint: ${error.hint}`) : null,
    state.lastOk ? el("div", { class: "hint" }, `showing data from block ${state.lastOk.block}; retrying every ${POLL_MS / 1000} s`) : null,
  );
  const status = document.getElementById("status");
  status.className = "status down";
  status.textContent = ERROR_TITLES[error.kind] || "error";
}

function clearError() {
  document.getElementById("error").hidden = true;
}

function renderStatus(overview) {
  const status = document.getElementById("status");
  status.className = "status live";
  status.replaceChildren(
    el("span", { class: "dot" }),
    ` chain ${overview.chainId} · coordinator `,
    short(overview.coordinator),
    ` · block `,
    el("b", { id: "head-block" }, overview.head.block),
    ` · ${formatTime(overview.head.time)}`,
  );
}

function renderTaskList(overview) {
  const nav = document.getElementById("tasks");
  if (overview.tasks.length === 0) {
    nav.replaceChildren(el("p", { class: "muted" }, "No tasks on this coordinator yet: create one with `anchorfl task create`."));
    return;
  }
  nav.replaceChildren(
    ...overview.tasks.map((t) =>
      el(
        "a",
        { href: `#task=${t.taskId}`, class: `task-tab${t.taskId === state.selected ? " active" : ""}`, "data-task": t.taskId },
        el("b", null, `Task ${t.taskId}`),
        el("span", null, t.currentRound === "0" ? "no round yet" : `round ${t.currentRound} · ${t.phase}`),
      ),
    ),
  );
}

/** The accuracy curve from each finalized round's report evaluation, as an inline SVG line chart. */
function accuracyChart(rounds) {
  const points = rounds
    .filter((r) => r.report && r.report.status === "ok" && r.report.report.evaluation)
    .map((r) => ({ round: Number(r.round), ...r.report.report.evaluation }));
  if (points.length === 0) {
    return el("p", { class: "muted", id: "accuracy-empty" }, "No accuracy yet: it appears once a finalized round's report carries an evaluation (aggregator run with --eval).");
  }
  const W = 1000, H = 260, left = 48, right = 24, top = 20, bottom = 36;
  const first = points[0].round, last = points[points.length - 1].round;
  const x = (round) => left + (last === first ? (W - left - right) / 2 : ((round - first) / (last - first)) * (W - left - right));
  const y = (acc) => top + (1 - acc) * (H - top - bottom);
  const grid = [0, 0.25, 0.5, 0.75, 1].map((v) =>
    el("g", null, el("line", { x1: left, x2: W - right, y1: y(v), y2: y(v), class: "grid" }), el("text", { x: left - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, `${v * 100}%`)),
  );
  const ticks = points.map((p) => el("text", { x: x(p.round), y: H - bottom + 16, class: "axis", "text-anchor": "middle" }, p.round));
  const line = el("polyline", { points: points.map((p) => `${x(p.round)},${y(p.accuracy)}`).join(" "), class: "curve" });
  const dots = points.map((p) =>
    el(
      "circle",
      { cx: x(p.round), cy: y(p.accuracy), r: 4, class: "point", "data-round": p.round, "data-accuracy": p.accuracy },
      el("title", null, `round ${p.round}: accuracy ${(p.accuracy * 100).toFixed(2)}%, loss ${p.loss.toFixed(4)} (${p.dataset}, ${p.examples} examples)`),
    ),
  );
  const labels = points.map((p) => el("text", { x: x(p.round), y: y(p.accuracy) - 9, class: "value", "text-anchor": "middle" }, `${(p.accuracy * 100).toFixed(1)}%`));
  return el(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, class: "chart", id: "accuracy-chart", role: "img", "aria-label": "held-out accuracy per round" },
    grid,
    el("text", { x: (W + left) / 2, y: H - 4, class: "axis", "text-anchor": "middle" }, "round"),
    ticks,
    line,
    dots,
    labels,
  );
}

function phaseBadge(round, head) {
  const badge = el("span", { class: `phase phase-${round.phase.toLowerCase()}` }, round.phase);
  const end = { Commit: round.commitEnd, Reveal: round.revealEnd, Aggregation: round.aggregationEnd }[round.phase];
  return end ? [badge, el("div", { class: "muted small" }, `ends in ${formatDuration(Number(end) - head.time)}`)] : badge;
}

function verdictOf(round, address) {
  if (!round.report || round.report.status !== "ok") return null;
  return round.report.report.participants.find((p) => p.address.toLowerCase() === address.toLowerCase()) || null;
}

function reportCell(round) {
  if (!round.finalized) return el("span", { class: "muted" }, "—");
  const link = cidLink(round.finalized.reportCid);
  if (!round.report) return link;
  if (round.report.status === "ok") return link;
  return [link, el("div", { class: "warn small", title: round.report.error }, round.report.status === "invalid" ? "invalid report" : "not in the store")];
}

function roundsTable(h) {
  const rows = [...h.rounds].reverse().map((r) => {
    const evaluation = r.report && r.report.status === "ok" ? r.report.report.evaluation : null;
    const votes = r.results.map((x) => Number(x.votes));
    return el(
      "tr",
      { "data-round": r.round, "data-phase": r.phase },
      el("td", null, el("b", null, r.round)),
      el("td", null, phaseBadge(r, h.asOf)),
      el("td", { class: "small nowrap" }, formatTime(r.opened.time), el("div", { class: "muted" }, `block ${r.opened.block}`)),
      el(
        "td",
        { class: "small nowrap" },
        el("div", null, `commit ${formatTime(r.commitEnd).slice(11, 19)}`),
        el("div", null, `reveal ${formatTime(r.revealEnd).slice(11, 19)}`),
        el("div", null, `aggregation ${formatTime(r.aggregationEnd).slice(11, 19)}`),
      ),
      el("td", { class: "num" }, r.commits.length),
      el("td", { class: "num" }, r.reveals.length),
      el("td", { class: "num nowrap" }, r.results.length ? `${r.results.length} (max ${Math.max(...votes)} votes)` : "0"),
      el("td", { class: "num" }, r.slashes.length),
      el("td", { class: "num" }, evaluation ? `${(evaluation.accuracy * 100).toFixed(2)}%` : "—"),
      el("td", null, r.finalized ? cidLink(r.model && r.model.cid) : el("span", { class: "muted" }, "—")),
      el("td", null, reportCell(r)),
    );
  });
  return table(["Round", "Phase", "Opened", "Deadlines (UTC)", "Commits", "Reveals", "Results", "Slashed", "Accuracy", "Model", "Report"], rows, { id: "rounds" });
}

function slashesTable(h) {
  const rows = h.rounds.flatMap((r) =>
    r.slashes.map((s) => {
      const verdict = verdictOf(r, s.participant);
      return el(
        "tr",
        { "data-participant": s.participant, "data-reason": s.reason },
        el("td", null, r.round),
        el("td", null, short(s.participant)),
        el("td", null, el("span", { class: "reason" }, s.reason)),
        el("td", { class: "why" }, verdict ? [el("b", null, verdict.verdict), ": ", verdict.reason] : s.reason === "NoReveal" ? "committed but did not reveal in time" : el("span", { class: "muted" }, "report unavailable")),
        el("td", { class: "num" }, formatAmount(s.amount, h.token)),
        el("td", { class: "small" }, `block ${s.block} `, short(s.tx)),
      );
    }),
  );
  return table(["Round", "Participant", "On-chain reason", "Report verdict and reason", "Amount", "Transaction"], rows, { id: "slashes" });
}

// Each participant's self-reported training in the latest round with a report, next to its
// verdict and, when the task runs the anomaly detector, its score (flags are evidence only).
function trainingTable(h) {
  const round = [...h.rounds].reverse().find((r) => r.report && r.report.status === "ok");
  if (!round) return el("p", { class: "muted" }, "no report yet");
  const num = (x, digits) => (typeof x === "number" ? x.toPrecision(digits) : "?");
  const rows = round.report.report.participants.map((p) => {
    const t = p.telemetry || {};
    const e = p.evidence || {};
    return el(
      "tr",
      { "data-participant": p.address, class: e.anomalyFlagged === true || e.telemetryFlags ? "flagged" : null },
      el("td", null, short(p.address)),
      el("td", null, p.verdict),
      el("td", { class: "num" }, p.numSamples ?? ""),
      el("td", { class: "num" }, p.telemetry ? `${num(t.lossBefore, 4)} → ${num(t.lossAfter, 4)}` : ""),
      el("td", { class: "num" }, t.wallMs !== undefined ? `${t.wallMs} ms` : ""),
      el("td", null, t.backend ?? ""),
      el("td", { class: "num" }, typeof e.anomalyScore === "number" ? `${e.anomalyScore.toPrecision(3)}${e.anomalyFlagged ? " flagged" : ""}` : ""),
      el("td", { class: "why" }, typeof e.telemetryFlags === "string" ? e.telemetryFlags : ""),
    );
  });
  return el(
    "div",
    null,
    el("p", { class: "muted small" }, `Round ${round.round}. Telemetry is what each participant says about its training; flags are recorded, never slashed.`),
    table(["Participant", "Verdict", "Samples", "Loss before → after", "Wall time", "Backend", "Anomaly score", "Telemetry flags"], rows, { id: "training" }),
  );
}

function participantsTable(h) {
  const rows = h.participants.map((p) =>
    el(
      "tr",
      { "data-participant": p.address, class: p.slashCount > 0 ? "slashed" : null },
      el("td", null, short(p.address)),
      el("td", { class: "num" }, formatAmount(p.stake, h.token)),
      el("td", { class: "num" }, formatAmount(p.pendingWithdrawal, h.token)),
      el("td", { class: "num" }, p.slashCount > 0 ? `${formatAmount(p.slashed, h.token)} (${p.slashCount}×)` : "0"),
      el("td", { class: "num" }, formatAmount(p.claimed, h.token)),
      el("td", { class: "num" }, p.commits),
      el("td", { class: "num" }, p.reveals),
    ),
  );
  return table(["Participant", "Stake", "Pending withdrawal", "Slashed", "Rewards claimed", "Commits", "Reveals"], rows, { id: "participants" });
}

/** Per round: how many aggregators submitted, whether the quorum was reached, who agreed with the final result and who dissented (and what it cost). */
function agreementTable(h) {
  const rows = [...h.rounds]
    .reverse()
    .filter((r) => r.agreement && r.agreement.positions.length > 0)
    .map((r) => {
      const a = r.agreement;
      const of = (position) => a.positions.filter((p) => p.position === position);
      const penalty = (p) => (p.penalty === null ? el("span", { class: "muted small" }, " penalty not yet applied") : ` −${formatAmount(p.penalty, h.token)}`);
      const who = (list, withPenalty) =>
        list.length ? list.map((p) => el("div", { "data-aggregator": p.aggregator }, short(p.aggregator), withPenalty ? penalty(p) : null)) : el("span", { class: "muted" }, "—");
      return el(
        "tr",
        { "data-round": r.round, "data-reached": a.reached ? "yes" : "no" },
        el("td", null, el("b", null, r.round)),
        el("td", { class: "num" }, `${a.positions.length} of ${h.created.config.aggregators.length}`),
        el("td", null, a.reached ? `reached (${a.quorum})` : el("span", { class: "warn" }, `not reached (${a.quorum} needed)`)),
        el("td", { class: "agreed" }, who(of("agreed"), false)),
        el("td", { class: "dissented" }, who(of("dissented"), true)),
        el("td", null, who(of("undecided"), false)),
      );
    });
  return table(["Round", "Submitted", "Quorum", "Agreed", "Dissented (penalty)", "Undecided"], rows, { id: "agreement" });
}

function aggregatorsTable(h) {
  const rows = h.aggregators.map((a) =>
    el(
      "tr",
      { "data-aggregator": a.address },
      el("td", null, short(a.address)),
      el("td", null, a.member ? "yes" : "no"),
      el("td", { class: "num" }, formatAmount(a.bond, h.token)),
      el("td", { class: "num" }, formatAmount(a.penalized, h.token)),
      el("td", { class: "num" }, a.submissions),
    ),
  );
  return table(["Aggregator", "Member", "Bond", "Penalized", "Results submitted"], rows, { id: "aggregators" });
}

function summary(h) {
  const c = h.created.config;
  const current = h.rounds[h.rounds.length - 1];
  const totalSlashed = h.participants.reduce((sum, p) => sum + BigInt(p.slashed), 0n);
  const item = (label, ...value) => el("div", { class: "kv" }, el("span", { class: "k" }, label), el("span", { class: "v" }, ...value));
  return el(
    "div",
    { class: "summary" },
    item("Current round", current ? [`${current.round} · `, el("span", { class: `phase phase-${current.phase.toLowerCase()}` }, current.phase)] : "none yet"),
    item("Global model", cidLink(h.globalModel.cid), h.globalModel.round === "0" ? " (genesis)" : ` (round ${h.globalModel.round})`),
    item("Reward escrow", formatAmount(h.escrow, h.token)),
    item("Participants", String(h.participants.length)),
    item("Total slashed", formatAmount(totalSlashed.toString(), h.token)),
    item("Owner", short(h.owner)),
    item("Stake", `min ${formatAmount(c.minStake, h.token)} · reward ${formatAmount(c.rewardPerRound, h.token)}/round`),
    item("Aggregators", `${c.aggregators.length}, quorum ${c.quorum}`),
  );
}

function renderTask(h) {
  document.getElementById("task").replaceChildren(
    el("h2", { class: "task-title" }, `Task ${h.taskId}`, el("span", { class: "muted small" }, ` as of block ${h.asOf.block}`)),
    summary(h),
    section("Accuracy on the held-out test set", accuracyChart(h.rounds)),
    section("Rounds", roundsTable(h)),
    section("Slashes", slashesTable(h)),
    section("Training telemetry (latest report)", trainingTable(h)),
    section("Participants and stake", participantsTable(h)),
    section("Aggregators", aggregatorsTable(h)),
    section("Aggregator agreement", agreementTable(h)),
  );
}

function selectedFrom(overview) {
  const wanted = /^#task=(\d+)$/.exec(window.location.hash);
  if (wanted && overview.tasks.some((t) => t.taskId === wanted[1])) return wanted[1];
  return overview.tasks.length ? overview.tasks[overview.tasks.length - 1].taskId : null;
}

async function poll() {
  try {
    const overview = await getJson("/api/tasks");
    state.selected = selectedFrom(overview);
    renderStatus(overview);
    renderTaskList(overview);
    const key = `${state.selected}@${overview.head.block}`;
    if (state.selected === null) document.getElementById("task").replaceChildren();
    else if (key !== state.renderedKey) {
      renderTask(await getJson(`/api/task/${state.selected}`));
      state.renderedKey = key;
    }
    state.lastOk = overview.head;
    clearError();
  } catch (error) {
    showError(error);
  }
}

async function loop() {
  await poll();
  setTimeout(loop, POLL_MS);
}

window.addEventListener("hashchange", () => {
  state.renderedKey = null;
  poll();
});
loop();

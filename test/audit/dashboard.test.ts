// The dashboard in headless Chromium against a real `hardhat node` after a scripted history
// (scenario.ts: 4 finalized rounds with an outlier and a withheld reveal, a failed round, an open
// one). The page must show the right rounds, the slashed participants with their reasons, the
// accuracy curve from the reports, the latest report's training telemetry with its flags, follow
// new blocks, serve files only after verifying them, and say clearly when the chain or the
// deployment is missing. Takes a screenshot (see SCREENSHOT).
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import { JsonRpcProvider } from "ethers";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { localAccount, writeDeployment } from "../../lib/config.js";
import { commitmentOf } from "../../lib/commitment.js";
import { sha256Digest } from "../../lib/digest.js";
import { BLOCK_EXTENSION } from "../../lib/store/fs-blockstore.js";
import { cidFromChain, EmbeddedStore, ZERO_ROOT } from "../../lib/store/index.js";
import { dashboardConnection } from "../../scripts/commands/audit.js";
import { startDashboard, type RunningDashboard } from "../../web/server.js";
import { freePort, startHardhatNode, type RunningNode } from "../helpers/hardhat-node.js";
import { runScenario, type ScenarioWorld } from "./scenario.js";

// Debian's chromium by default; CHROMIUM_PATH points elsewhere (e.g. chromium-browser).
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
// The screenshot goes to a temp file; ANCHORFL_SCREENSHOT=docs/dashboard.png refreshes the README's picture.
const SCREENSHOT = process.env.ANCHORFL_SCREENSHOT ?? path.join(tmpdir(), `anchorfl-dashboard-${process.pid}.png`);
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** A GET with a chosen Host header (fetch won't let a test forge it). */
function getWithHost(url: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host } }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("dashboard in headless Chromium against a real hardhat node", function () {
  this.timeout(240_000);
  let node: RunningNode;
  let provider: JsonRpcProvider;
  let dir: string;
  let home: string;
  let world: ScenarioWorld;
  let dashboard: RunningDashboard;
  let browser: BrowserContext;
  let page: Page;
  const warnings: string[] = [];
  const extraDashboards: RunningDashboard[] = [];

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      console.log(`    skipped: no browser at ${CHROMIUM} (install Debian's chromium: apt-get install -y chromium, or set CHROMIUM_PATH)`);
      this.skip();
    }
    dir = await mkdtemp(path.join(tmpdir(), "anchorfl-dashboard-"));
    home = path.join(dir, "home");
    node = await startHardhatNode();
    // No response cache: with automining, a nonce read 100 ms ago is already stale.
    provider = new JsonRpcProvider(node.url, undefined, { pollingInterval: 200, cacheTimeout: -1 });
    const accounts = Array.from({ length: 8 }, (_, i) => localAccount(i, provider));
    const store = await EmbeddedStore.open({ dataDir: path.join(home, "ipfs") });
    try {
      world = await runScenario({ owner: accounts[0], aggregators: accounts.slice(1, 4), participants: accounts.slice(4, 8) }, store, provider, 4);
    } finally {
      await store.close();
    }
    await writeDeployment(home, {
      chainId: world.chainId.toString(),
      coordinator: await world.coordinator.getAddress(),
      token: await world.token.getAddress(),
      deployBlock: world.deployBlock,
      deployedAt: new Date().toISOString(),
    });
    dashboard = await startDashboard({ port: 0, connect: () => dashboardConnection({ rpc: node.url, home }, (w) => warnings.push(w)) });
    browser = await chromium.launchPersistentContext(path.join(dir, "chromium-profile"), {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
    });
    page = await browser.newPage();
    await page.goto(dashboard.url);
    await page.waitForSelector('#rounds tr[data-round="6"]');
  });

  after(async () => {
    await browser?.close();
    for (const d of extraDashboards) await d.close();
    await dashboard?.close();
    provider?.destroy();
    await node?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("shows every round with its phase, counts, accuracy and links to its model and report", async () => {
    const rows = await page.$$eval("#rounds tbody tr", (trs) =>
      trs.map((tr) => ({
        round: tr.getAttribute("data-round"),
        phase: tr.getAttribute("data-phase"),
        cells: [...tr.querySelectorAll("td")].map((td) => td.textContent ?? ""),
        links: [...tr.querySelectorAll("a")].map((a) => a.getAttribute("href")),
      })),
    );
    expect(rows.map((r) => [r.round, r.phase])).to.deep.equal([
      ["6", "Commit"],
      ["5", "Failed"],
      ["4", "Finalized"],
      ["3", "Finalized"],
      ["2", "Finalized"],
      ["1", "Finalized"],
    ]);
    const round2 = rows.find((r) => r.round === "2")!;
    expect(round2.cells.slice(4, 8)).to.deep.equal(["3", "2", "2 (max 2 votes)", "1"]);
    expect(round2.cells[8]).to.equal(`${(world.accuracy[1] * 100).toFixed(2)}%`);
    const { digest, modelDigest } = world.reports.get(2n)!;
    expect(round2.links).to.have.length(2);
    const [modelHref, reportHref] = round2.links as string[];
    const model = await page.request.get(new URL(modelHref, dashboard.url).toString());
    expect(model.status()).to.equal(200);
    expect(sha256Digest(await model.body())).to.equal(modelDigest);
    const report = await page.request.get(new URL(reportHref, dashboard.url).toString());
    expect(report.headers()["content-type"]).to.include("application/json");
    expect(sha256Digest(await report.body())).to.equal(digest);
    expect((await report.json()).round).to.equal("2");
    expect(await page.textContent("nav")).to.include("Task 1").and.include("round 6 · Commit");
  });

  it("shows the slashed participants with the on-chain reason and the report's reason", async () => {
    const [, , p3, p4] = world.participants;
    const outlier = page.locator(`#slashes tr[data-participant="${p3.address}"]`);
    expect(await outlier.getAttribute("data-reason")).to.equal("Outlier");
    expect(await outlier.textContent()).to.include("outlier: update is 41.3 times the median distance").and.include("100 AFLD");
    const withheld = page.locator(`#slashes tr[data-participant="${p4.address}"]`);
    expect(await withheld.getAttribute("data-reason")).to.equal("NoReveal");
    expect(await withheld.textContent()).to.include("no-reveal: committed but did not reveal").and.include("200 AFLD");
    expect(await page.locator("#slashes tbody tr").count()).to.equal(2);
    const p3Row = page.locator(`#participants tr[data-participant="${p3.address}"]`);
    expect(await p3Row.getAttribute("class")).to.equal("slashed");
    expect(await p3Row.textContent()).to.include("900 AFLD");
    expect(await page.locator(`#aggregators tr[data-aggregator="${world.aggregators[2].address}"]`).textContent()).to.include("50 AFLD");
  });

  it("shows per round who agreed with the final result and who dissented, with the penalty", async () => {
    const [a1, a2, dissenter] = world.aggregators;
    const round1 = page.locator('#agreement tr[data-round="1"]');
    expect(await round1.getAttribute("data-reached")).to.equal("yes");
    expect(await round1.locator("td.agreed [data-aggregator]").evaluateAll((ds) => ds.map((d) => d.getAttribute("data-aggregator")))).to.have.members([a1.address, a2.address]);
    expect(await round1.locator(`td.dissented [data-aggregator="${dissenter.address}"]`).textContent()).to.include("−50 AFLD");
  });

  it("draws the accuracy curve from each finalized round's report", async () => {
    const points = await page.$$eval("#accuracy-chart circle.point", (cs) => cs.map((c) => [Number(c.getAttribute("data-round")), Number(c.getAttribute("data-accuracy"))]));
    expect(points).to.deep.equal(world.accuracy.map((a, i) => [i + 1, a]));
    const ys = await page.$$eval("#accuracy-chart circle.point", (cs) => cs.map((c) => Number(c.getAttribute("cy"))));
    // Higher accuracy is drawn higher up (smaller y).
    for (let i = 1; i < ys.length; i++) expect(ys[i]).to.be.below(ys[i - 1]);
  });

  it("shows the latest report's training telemetry, one row per participant, with its flags", async () => {
    const latest = [...world.reports.keys()].reduce((a, b) => (b > a ? b : a));
    const { report } = world.reports.get(latest)!;
    expect(await page.locator("#training").locator("xpath=..").textContent()).to.include(`Round ${latest}.`);
    const rows = await page.$$eval("#training tbody tr", (trs) =>
      trs.map((tr) => ({
        participant: tr.getAttribute("data-participant"),
        flagged: tr.classList.contains("flagged"),
        cells: [...tr.querySelectorAll("td")].map((td) => td.textContent ?? ""),
      })),
    );
    expect(rows.map((r) => r.participant)).to.deep.equal(report.participants.map((p) => p.address));
    // The page's own formatting of the report's numbers (4 significant digits).
    const loss = (x: number | undefined) => (x === undefined ? "?" : x.toPrecision(4));
    for (const [i, p] of report.participants.entries()) {
      const t = p.telemetry;
      expect(t, `telemetry of ${p.address}`).to.not.equal(undefined);
      const { cells, flagged } = rows[i];
      expect(cells[3]).to.equal(`${loss(t!.lossBefore)} → ${loss(t!.lossAfter)}`);
      expect(cells[4]).to.equal(`${t!.wallMs} ms`);
      expect(cells[5]).to.equal(t!.backend);
      const flags = p.evidence?.telemetryFlags;
      expect(flagged, `row ${p.address} flagged`).to.equal(typeof flags === "string");
      expect(cells[7]).to.equal(typeof flags === "string" ? flags : "");
    }
    // The scenario's rising loss is flagged, and a flag alone never changes the verdict.
    const flaggedRows = rows.filter((r) => r.flagged);
    expect(flaggedRows.map((r) => r.participant)).to.deep.equal([world.participants[2].address]);
    expect(flaggedRows[0].cells[7]).to.include("local loss rose from");
    expect(flaggedRows[0].cells[1]).to.equal("accepted");
  });

  it("follows new blocks: a commit appears without a reload; then the screenshot", async () => {
    const before = Number(await page.textContent("#head-block"));
    const p1 = localAccount(4, provider);
    const salt = sha256Digest(new TextEncoder().encode("dashboard salt"));
    const updateDigest = sha256Digest(new TextEncoder().encode("dashboard update"));
    const commitment = commitmentOf({ chainId: world.chainId, coordinator: await world.coordinator.getAddress(), taskId: 1n, round: 6n, participant: p1.address, updateDigest, salt });
    await (await world.coordinator.connect(p1).commit(1n, 6n, commitment)).wait();
    await page.locator('#rounds tr[data-round="6"] td:nth-child(5)').filter({ hasText: /^1$/ }).waitFor({ timeout: 15_000 });
    expect(Number(await page.textContent("#head-block"))).to.equal(before + 1);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect((await readFile(SCREENSHOT)).subarray(1, 4).toString()).to.equal("PNG");
  });

  it("serves only verified content, only to 127.0.0.1, and names what is wrong", async () => {
    const base = dashboard.url;
    const bad = await page.request.get(`${base}ipfs/not-a-cid`);
    expect(bad.status()).to.equal(400);
    expect((await bad.json()).error.message).to.include('expected a CID, found "not-a-cid"');
    const missingCid = cidFromChain(sha256Digest(new TextEncoder().encode("absent")), ZERO_ROOT);
    const missing = await page.request.get(`${base}ipfs/${missingCid}`);
    expect(missing.status()).to.equal(404);
    const unknownTask = await page.request.get(`${base}api/task/7`);
    expect(unknownTask.status()).to.equal(404);
    expect((await unknownTask.json()).error.message).to.include("task 7 does not exist");
    expect((await page.request.get(`${base}api/task/x1`)).status()).to.equal(400);
    const rebound = await getWithHost(`${base}api/tasks`, "attacker.example:80");
    expect(rebound.status).to.equal(403);

    // Tamper with the round 1 report's block on disk: the store refuses it, the server says so.
    const { digest } = world.reports.get(1n)!;
    const reportCid = cidFromChain(digest, ZERO_ROOT);
    const good = Buffer.from(await (await page.request.get(`${base}ipfs/${reportCid}`)).body());
    const blocks = path.join(home, "ipfs", "blocks");
    const files = (await readdir(blocks, { recursive: true })).map((f) => path.join(blocks, String(f)));
    let target: string | undefined;
    for (const f of files) if (f.endsWith(BLOCK_EXTENSION) && (await readFile(f).catch(() => Buffer.alloc(0))).equals(good)) target = f;
    expect(target, "report block file").to.not.equal(undefined);
    const altered = Buffer.from(good);
    altered[altered.indexOf("outlier")] = "O".charCodeAt(0);
    await writeFile(target!, altered);
    try {
      const tampered = await page.request.get(`${base}ipfs/${reportCid}?again`);
      expect(tampered.status()).to.equal(502);
      expect((await tampered.json()).error.message).to.include(`block ${reportCid}`).and.include("is damaged");
    } finally {
      await writeFile(target!, good);
    }
  });

  it("says when the chain cannot be reached or nothing is deployed, and recovers once it is", async () => {
    const deadPort = await freePort();
    const down = await startDashboard({ port: 0, connect: () => dashboardConnection({ rpc: `http://127.0.0.1:${deadPort}`, home }, () => undefined) });
    extraDashboards.push(down);
    const other = await browser.newPage();
    await other.goto(down.url);
    await other.waitForSelector("#error:not([hidden])");
    expect(await other.textContent("#error")).to.include("Cannot reach the chain").and.include(`127.0.0.1:${deadPort}`);
    expect(await other.textContent("#status")).to.include("Cannot reach the chain");

    const emptyHome = path.join(dir, "empty-home");
    const undeployed = await startDashboard({ port: 0, connect: () => dashboardConnection({ rpc: node.url, home: emptyHome }, () => undefined) });
    extraDashboards.push(undeployed);
    await other.goto(undeployed.url);
    await other.waitForSelector("#error:not([hidden])");
    expect(await other.textContent("#error")).to.include("No deployment").and.include("no deployment recorded for chain 31337");
    // Deploying (here: recording the deployment) is picked up without restarting the dashboard.
    await writeDeployment(emptyHome, JSON.parse(await readFile(path.join(home, "deployments", "31337.json"), "utf8")));
    await other.waitForSelector('#rounds tr[data-round="6"]', { timeout: 15_000 });
    expect(await other.isHidden("#error")).to.equal(true);
    await other.close();

    // The chain going away under a live page: the error shows and the last data stays.
    await node.stop();
    await page.waitForSelector("#error:not([hidden])", { timeout: 30_000 });
    expect(await page.textContent("#error")).to.include("Cannot reach the chain").and.include("showing data from block");
    expect(await page.locator('#rounds tr[data-round="6"]').count()).to.equal(1);
    expect(warnings).to.deep.equal([]);
  });
});

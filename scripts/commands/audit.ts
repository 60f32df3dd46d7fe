// `anchorfl audit` and `anchorfl dashboard`: what anyone runs to check a task, holding no key.
// Both read the chain over JSON-RPC (events from the coordinator's deployment block on) and the
// reports from the content store; `audit` prints, `dashboard` serves a page that follows new blocks.
import type { Command } from "commander";
import { AuditError } from "../../lib/audit/events.js";
import { formatHistory, formatRoundReport, historyJson, selectRound } from "../../lib/audit/format.js";
import { AuditReader } from "../../lib/audit/history.js";
import { StoreError, type ContentStore } from "../../lib/store/index.js";
import { startDashboard, type DashboardConnection } from "../../web/server.js";
import { openContext, parseId, withContext, type Context, type GlobalOptions } from "./context.js";

/** The context's store, or null with a warning when it cannot be opened: the on-chain part stands on its own. */
async function storeOrNull(ctx: Context, warn: (line: string) => void): Promise<ContentStore | null> {
  try {
    return await ctx.store();
  } catch (error) {
    if (!(error instanceof StoreError)) throw error;
    warn(`warning: content store unavailable, reports are not shown: ${error.message}`);
    return null;
  }
}

export function readerFor(ctx: Context, store: ContentStore | null): AuditReader {
  return new AuditReader({ provider: ctx.provider, coordinator: ctx.coordinator, chainId: ctx.chainId, fromBlock: ctx.fromBlock, store: store ?? undefined });
}

export interface AuditOptions {
  task: string;
  round?: string;
  json?: boolean;
}

/** Prints a task's history (or one round of it) as text or JSON. */
export async function runAudit(ctx: Context, o: AuditOptions, out: (text: string) => void, warn: (line: string) => void = console.error): Promise<void> {
  const taskId = parseId(o.task, "--task");
  const round = o.round === undefined ? undefined : parseId(o.round, "--round");
  const reader = readerFor(ctx, await storeOrNull(ctx, warn));
  const history = await reader.history(taskId);
  if (o.json) out(historyJson(round === undefined ? history : selectRound(history, round)));
  else out(round === undefined ? formatHistory(history) : formatRoundReport(history, round));
}

/** Connects the dashboard to the chain and store the global options name. */
export async function dashboardConnection(options: GlobalOptions, warn: (line: string) => void = console.error): Promise<DashboardConnection> {
  const ctx = await openContext(options, { readOnly: true });
  try {
    const store = await storeOrNull(ctx, warn);
    return { chainId: ctx.chainId, coordinator: await ctx.coordinator.getAddress(), reader: readerFor(ctx, store), store, close: () => ctx.close() };
  } catch (error) {
    await ctx.close();
    throw error;
  }
}

export function register(program: Command): void {
  program
    .command("audit")
    .description("print a task's history from on-chain events: rounds, commits, reveals, results, slashes, claims")
    .requiredOption("--task <id>", "task id")
    .option("--round <n>", "one round in detail, with the report's per-participant verdicts and reasons")
    .option("--json", "machine-readable JSON (amounts as decimal strings)")
    .action(async (o: AuditOptions, cmd: Command) => {
      await withContext(cmd.optsWithGlobals(), (ctx) => runAudit(ctx, o, (text) => console.log(text)), { readOnly: true });
    });
  program
    .command("dashboard")
    .description("serve the audit dashboard on 127.0.0.1: tasks, rounds, stakes, slashes, accuracy; follows new blocks")
    .option("--port <n>", "port on 127.0.0.1 (0 picks a free one)", "8787")
    .action(async (o: { port: string }, cmd: Command) => {
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new AuditError(`--port must be an integer from 0 to 65535, got "${o.port}"`);
      const globals = cmd.optsWithGlobals() as GlobalOptions;
      const dashboard = await startDashboard({ port, connect: () => dashboardConnection(globals) });
      console.log(`dashboard at ${dashboard.url} (Ctrl-C to stop)`);
      await new Promise<void>((resolve) => process.once("SIGINT", resolve));
      await dashboard.close();
    });
}

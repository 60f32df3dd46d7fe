// The dashboard's server: the static page, a small JSON API computed from the chain with
// lib/audit (the same history `audit --json` prints), and the content store's files at
// /ipfs/<cid>, verified by the store before a byte is sent. It listens on 127.0.0.1 only and
// answers only requests addressed to it by that name, so other web pages cannot read it
// through DNS rebinding. Failures reach the page as JSON errors it can show (RPC down, no
// deployment, missing content); after a chain failure the next request connects afresh, so
// a node started or restarted later is picked up without restarting the dashboard.
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { historyJson } from "../lib/audit/format.js";
import { AuditError } from "../lib/audit/events.js";
import type { AuditReader, ChainPoint, TaskSummary } from "../lib/audit/history.js";
import { CoordinatorError } from "../lib/chain/coordinator.js";
import { RpcUnavailableError } from "../lib/chain/rpc.js";
import { ConfigError } from "../lib/config.js";
import { AnchorFLError } from "../lib/errors.js";
import {
  ContentNotFoundError,
  ContentTimeoutError,
  ContentTooLargeError,
  IntegrityError,
  InvalidContentRefError,
  StoreError,
  type ContentStore,
} from "../lib/store/index.js";

/** What the dashboard reads: a connected audit reader and, when one could be opened, the content store. */
export interface DashboardConnection {
  readonly chainId: bigint;
  readonly coordinator: string;
  readonly reader: AuditReader;
  readonly store: ContentStore | null;
  close(): Promise<void>;
}

export interface DashboardOptions {
  /** 0 picks a free port. */
  readonly port: number;
  /** Opens the connection; called again after a chain failure. */
  readonly connect: () => Promise<DashboardConnection>;
  /** Largest file served from the store. */
  readonly maxContentBytes?: number;
  readonly contentTimeoutMs?: number;
}

export interface RunningDashboard {
  readonly url: string;
  close(): Promise<void>;
}

const HOST = "127.0.0.1";
const STATIC: Readonly<Record<string, { file: string; type: string }>> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/style.css": { file: "style.css", type: "text/css; charset=utf-8" },
};
const SECURITY_HEADERS = {
  "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

class HttpError extends AnchorFLError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The HTTP status and page-facing kind of an error (pure). */
export function classifyError(error: unknown): { status: number; kind: string } {
  if (error instanceof HttpError) return { status: error.status, kind: "request" };
  if (error instanceof RpcUnavailableError) return { status: 503, kind: "rpc" };
  if (error instanceof ConfigError) return { status: 503, kind: "deployment" };
  if (error instanceof CoordinatorError) return { status: 503, kind: "coordinator" };
  if (error instanceof InvalidContentRefError) return { status: 400, kind: "content" };
  if (error instanceof ContentNotFoundError) return { status: 404, kind: "content" };
  if (error instanceof IntegrityError) return { status: 502, kind: "content" };
  if (error instanceof ContentTimeoutError) return { status: 504, kind: "content" };
  if (error instanceof ContentTooLargeError) return { status: 413, kind: "content" };
  if (error instanceof StoreError) return { status: 503, kind: "store" };
  if (error instanceof AuditError) return { status: 422, kind: "audit" };
  return { status: 500, kind: "internal" };
}

/** Errors after which the chain connection is not trusted any more (anything but a bad request or missing content). */
const dropsConnection = (error: unknown) => !(error instanceof HttpError || error instanceof StoreError || error instanceof AuditError);

function errorBody(error: unknown): { error: { kind: string; name: string; message: string; hint?: string } } {
  const { kind } = classifyError(error);
  if (error instanceof AnchorFLError) {
    return { error: { kind, name: error.name, message: error.message.split("\n  hint:")[0], ...(error.hint ? { hint: error.hint } : {}) } };
  }
  return { error: { kind, name: "Error", message: `internal error: ${(error as Error)?.message ?? String(error)}` } };
}

function send(res: ServerResponse, status: number, type: string, body: string | Uint8Array, extra: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store", ...SECURITY_HEADERS, ...extra });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, body: string) {
  send(res, status, "application/json; charset=utf-8", body);
}

/** A JSON document (a report) is served as JSON, anything else (model files) as a download. */
function contentType(bytes: Uint8Array): string {
  if (bytes[0] !== 0x7b) return "application/octet-stream";
  try {
    JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    return "application/json; charset=utf-8";
  } catch {
    return "application/octet-stream";
  }
}

export function parseTaskId(text: string): bigint {
  if (!/^[1-9][0-9]{0,77}$/.test(text)) throw new HttpError(400, `task id must be a positive integer, got "${text.slice(0, 80)}"`);
  return BigInt(text);
}

/** Starts the dashboard on 127.0.0.1. */
export async function startDashboard(options: DashboardOptions): Promise<RunningDashboard> {
  const webDir = new URL(".", import.meta.url);
  const files = new Map<string, Buffer>();
  for (const { file } of Object.values(STATIC)) files.set(file, await readFile(new URL(file, webDir)));

  // Everything the API says is a function of the head block, so answers are cached per block.
  let cache: { block: number; tasks?: Promise<TaskSummary[]>; histories: Map<bigint, Promise<string>> } = { block: -1, histories: new Map() };
  let connection: Promise<DashboardConnection> | undefined;
  const connect = () => (connection ??= options.connect().catch((error) => ((connection = undefined), Promise.reject(error))));
  const drop = async (failed: Promise<DashboardConnection> | undefined) => {
    if (!failed || connection !== failed) return;
    connection = undefined;
    // A restarted node may reach the same block numbers with other contents.
    cache = { block: -1, histories: new Map() };
    await failed.then((c) => c.close()).catch(() => undefined);
  };

  const atHead = async (c: DashboardConnection): Promise<ChainPoint> => {
    const head = await c.reader.head();
    if (cache.block !== head.block) cache = { block: head.block, histories: new Map() };
    return head;
  };
  const tasks = (c: DashboardConnection, head: ChainPoint) => {
    const entry = cache;
    if (!entry.tasks) {
      const pending = c.reader.tasks(head);
      entry.tasks = pending;
      pending.catch(() => (entry.tasks = undefined));
    }
    return entry.tasks;
  };

  async function api(path: string): Promise<string> {
    const current = connect();
    try {
      const c = await current;
      const head = await atHead(c);
      if (path === "/api/tasks") {
        return historyJson({ chainId: c.chainId, coordinator: c.coordinator, head, store: c.store?.description ?? null, tasks: await tasks(c, head) });
      }
      const match = /^\/api\/task\/([^/]+)$/.exec(path);
      if (!match) throw new HttpError(404, `no API endpoint ${path}`);
      const taskId = parseTaskId(match[1]);
      if (!(await tasks(c, head)).some((t) => t.taskId === taskId)) throw new HttpError(404, `task ${taskId} does not exist on coordinator ${c.coordinator}`);
      const entry = cache;
      let json = entry.histories.get(taskId);
      if (!json) {
        const pending = c.reader.history(taskId, { asOf: head }).then(historyJson);
        entry.histories.set(taskId, pending);
        pending.catch(() => entry.histories.delete(taskId));
        json = pending;
      }
      return await json;
    } catch (error) {
      if (dropsConnection(error)) await drop(current);
      throw error;
    }
  }

  async function content(cid: string): Promise<Uint8Array> {
    const c = await connect();
    if (!c.store) throw new StoreError("no content store is open, so files cannot be served", { hint: "check the --ipfs / --home settings the dashboard was started with" });
    return c.store.get(cid, { maxBytes: options.maxContentBytes ?? 256 * 1024 * 1024, timeoutMs: options.contentTimeoutMs ?? 15_000 });
  }

  async function handle(req: IncomingMessage, res: ServerResponse, port: number): Promise<void> {
    const host = req.headers.host ?? "";
    if (host !== `${HOST}:${port}` && host !== `localhost:${port}`) throw new HttpError(403, `requests must be addressed to ${HOST}:${port}, not "${host.slice(0, 100)}"`);
    if (req.method !== "GET" && req.method !== "HEAD") throw new HttpError(405, `method ${req.method} is not allowed`);
    const path = new URL(req.url ?? "/", `http://${HOST}`).pathname;
    const page = STATIC[path];
    if (page) return send(res, 200, page.type, files.get(page.file)!);
    if (path.startsWith("/api/")) return sendJson(res, 200, await api(path));
    if (path.startsWith("/ipfs/")) {
      const cid = path.slice("/ipfs/".length);
      const bytes = await content(cid);
      // Content-addressed: the bytes behind a CID never change.
      return send(res, 200, contentType(bytes), bytes, {
        "cache-control": "public, max-age=31536000, immutable",
        "content-disposition": `inline; filename="${cid.replace(/[^a-z0-9]/gi, "")}"`,
      });
    }
    throw new HttpError(404, `nothing at ${path}`);
  }

  const server = createServer((req, res) => {
    const port = (server.address() as AddressInfo).port;
    handle(req, res, port).catch((error) => {
      if (res.headersSent) return res.destroy();
      sendJson(res, classifyError(error).status, JSON.stringify(errorBody(error)));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, HOST, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${HOST}:${port}/`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await drop(connection);
    },
  };
}

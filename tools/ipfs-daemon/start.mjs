#!/usr/bin/env node
// Starts a real Kubo-RPC-compatible daemon for the Kubo backend's tests and CI. No Kubo
// binary can be installed on these machines; the deprecated js-ipfs daemon (ipfs@0.66.1,
// installed in this folder only) serves the same RPC API. It runs offline on loopback:
// fresh repo in a temp folder, no swarm addresses, no bootstrap, no preload, no gateway.
//
// Install once (~3 min): `(cd tools/ipfs-daemon && PATH="$PWD/../../node_modules/.bin:$PATH"
// npm install --no-audit --no-fund)`. Not `npm ci`: an optional dependency of ipfs
// (electron-webrtc -> electron-eval) names a GitHub tarball that cannot be fetched here, so
// npm ci always finds the lockfile "out of sync"; npm install follows the committed lockfile
// for everything else and leaves it unchanged.
//
// Usage (under Node 22, e.g. `npx node tools/ipfs-daemon/start.mjs --port 5201`):
//   prints `IPFS_API=http://127.0.0.1:<port>` and `IPFS_DAEMON_PID=<pid>` once the API
//   answers, then exits, leaving the daemon running: `eval "$(npx node …/start.mjs)"`.
//   Stop it with `kill $IPFS_DAEMON_PID`. Its repo, log and pid file are in --home
//   (default: a new temp folder).
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "5201" },
    home: { type: "string" },
    "timeout-ms": { type: "string", default: "60000" },
  },
});

const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, "node_modules", "ipfs", "src", "cli.js");
const port = Number(values.port);
if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`expected --port between 1 and 65535, found ${values.port}`);
// The folder holds the repo, the init config, the log and the pid file.
const home = values.home ?? mkdtempSync(join(tmpdir(), "anchorfl-ipfs-"));
const repo = join(home, "repo");
const apiUrl = `http://127.0.0.1:${port}`;
// Otherwise a daemon already on the port would answer and be mistaken for ours.
if (!(await portIsFree(port))) fail(`expected 127.0.0.1:${port} to be free for the RPC API, found it in use`);

const config = {
  Addresses: { Swarm: [], API: `/ip4/127.0.0.1/tcp/${port}`, Gateway: [], RPC: [], Delegates: [] },
  Bootstrap: [],
  Discovery: { MDNS: { Enabled: false }, webRTCStar: { Enabled: false } },
};
const configPath = join(home, "config.json");
mkdirSync(home, { recursive: true });
writeFileSync(configPath, JSON.stringify(config));

const log = openSync(join(home, "daemon.log"), "a");
const child = spawn(process.execPath, [cli, "daemon", "--offline", "--enable-preload=false", "--init-config", configPath, "--init-profile", "test"], {
  env: { ...process.env, IPFS_PATH: repo },
  detached: true,
  stdio: ["ignore", log, log],
});
child.unref();
let exited = false;
child.on("exit", () => (exited = true));

const deadline = Date.now() + Number(values["timeout-ms"]);
while (Date.now() < deadline && !exited) {
  if (await answers(apiUrl)) {
    writeFileSync(join(home, "daemon.pid"), String(child.pid));
    console.log(`IPFS_API=${apiUrl}`);
    console.log(`IPFS_DAEMON_PID=${child.pid}`);
    process.exit(0);
  }
  await new Promise((resolve) => setTimeout(resolve, 250));
}
if (!exited) process.kill(child.pid);
fail(`expected the js-ipfs RPC API to answer at ${apiUrl}, found ${exited ? "the daemon exited" : "no answer in time"}; log:\n${readFileSync(join(home, "daemon.log"), "utf8").slice(-3000)}`);

function portIsFree(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

async function answers(url) {
  try {
    const res = await fetch(`${url}/api/v0/id`, { method: "POST", signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return false;
  }
}

function fail(message) {
  console.error(`ipfs-daemon: ${message}`);
  process.exit(1);
}

import { expect } from "chai";
import { HDNodeWallet, Mnemonic } from "ethers";
import http from "node:http";
import { connectRpc, probeChainId, RpcUnavailableError, UnconfirmedSendError } from "../../lib/chain/rpc.js";
import { HARDHAT_MNEMONIC } from "../../lib/config.js";
import { freePort, startHardhatNode, type RunningNode } from "../helpers/hardhat-node.js";

describe("chain RPC access", function () {
  let node: RunningNode;

  before(async function () {
    node = await startHardhatNode();
  });
  after(async () => node?.stop());

  it("probes the chain id of a real hardhat node", async () => {
    expect(await probeChainId(node.url)).to.equal(31337n);
    const provider = await connectRpc(node.url);
    expect(await provider.getBlockNumber()).to.be.a("number");
    provider.destroy();
  });

  it("fails fast with one clear error naming a dead endpoint", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const started = Date.now();
    const error = await connectRpc(dead).catch((e) => e);
    expect(error).to.be.instanceOf(RpcUnavailableError);
    expect(error.message).to.include(dead);
    expect(Date.now() - started).to.be.below(5_000);
  });

  it("rejects an endpoint that does not speak JSON-RPC", async () => {
    const server = http.createServer((_req, res) => res.end("<html>not rpc</html>"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const error = await probeChainId(url).catch((e) => e);
    server.close();
    expect(error).to.be.instanceOf(RpcUnavailableError);
    expect(error.message).to.include("did not answer eth_chainId with JSON");
  });

  it("retries transient failures: a proxy that fails the first requests with 503", async () => {
    let failuresLeft = 2;
    let requests = 0;
    const proxy = http.createServer(async (req, res) => {
      requests++;
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks).toString();
      const isChainId = body.includes("eth_chainId");
      if (!isChainId && failuresLeft > 0) {
        failuresLeft--;
        res.writeHead(503).end("busy");
        return;
      }
      const upstream = await fetch(node.url, { method: "POST", headers: { "content-type": "application/json" }, body });
      res.writeHead(upstream.status, { "content-type": "application/json" }).end(await upstream.text());
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
    const provider = await connectRpc(url, { backoffMs: 10 });
    const block = await provider.getBlockNumber();
    provider.destroy();
    proxy.close();
    expect(block).to.be.a("number");
    expect(failuresLeft).to.equal(0);
    expect(requests).to.be.at.least(4);
  });

  it("gives up after the configured attempts with an error naming the URL", async () => {
    const proxy = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        if (body.includes("eth_chainId")) res.writeHead(200, { "content-type": "application/json" }).end('{"jsonrpc":"2.0","id":1,"result":"0x7a69"}');
        else res.writeHead(503).end("down");
      });
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
    const provider = await connectRpc(url, { attempts: 3, backoffMs: 5 });
    const error = await provider.getBlockNumber().catch((e) => e);
    provider.destroy();
    proxy.close();
    expect(error).to.be.instanceOf(RpcUnavailableError);
    expect(error.message).to.include(url).and.to.include("failed 3 times");
  });

  /**
   * A proxy in front of the node that handles the first eth_sendRawTransaction with `first`:
   * "forward-then-504" delivers it and loses the answer; "429" refuses it without delivering. `body`
   * is the failed answer's body.
   */
  async function sendThroughFlakyProxy(first: "forward-then-504" | "429", body = "try later"): Promise<{ error: unknown; sends: number; nonceBefore: number; nonceAfter: number }> {
    let sends = 0;
    const forward = async (body: string) => fetch(node.url, { method: "POST", headers: { "content-type": "application/json" }, body });
    const proxy = http.createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const request = Buffer.concat(chunks).toString();
      if (request.includes("eth_sendRawTransaction") && sends++ === 0) {
        if (first === "forward-then-504") await forward(request);
        res.writeHead(first === "429" ? 429 : 504).end(body);
        return;
      }
      const upstream = await forward(request);
      res.writeHead(upstream.status, { "content-type": "application/json" }).end(await upstream.text());
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
    const provider = await connectRpc(url, { backoffMs: 5 });
    const wallet = HDNodeWallet.fromMnemonic(Mnemonic.fromPhrase(HARDHAT_MNEMONIC), "m/44'/60'/0'/0/7").connect(provider);
    const nonceBefore = await provider.getTransactionCount(wallet.address);
    const error = await wallet
      .sendTransaction({ to: wallet.address, value: 1n })
      .then((tx) => tx.wait())
      .then(() => undefined, (e: unknown) => e);
    const nonceAfter = await provider.getTransactionCount(wallet.address);
    provider.destroy();
    proxy.close();
    return { error, sends, nonceBefore, nonceAfter };
  }

  it("does not send a transaction again after a failure that may have delivered it, and says so", async () => {
    const { error, sends, nonceBefore, nonceAfter } = await sendThroughFlakyProxy("forward-then-504");
    expect(error).to.be.instanceOf(UnconfirmedSendError);
    // Not an outage that `client run` waits out and retries (client/participant/round.ts isOutage).
    expect(error).not.to.be.instanceOf(RpcUnavailableError);
    expect((error as Error).message).to.include("not sent again");
    expect(sends).to.equal(1);
    expect(nonceAfter - nonceBefore, "the delivered transaction was mined once").to.equal(1);
  });

  it("judges delivery by the failure's code, not by words in the response body", async () => {
    const { error, sends, nonceBefore, nonceAfter } = await sendThroughFlakyProxy("forward-then-504", "upstream timed out (not a 429, not ECONNREFUSED)");
    expect(error).to.be.instanceOf(UnconfirmedSendError);
    expect((error as Error).message).to.include("not sent again");
    expect(sends).to.equal(1);
    expect(nonceAfter - nonceBefore).to.equal(1);
  });

  // ethers' FetchRequest sends again after a 429 itself; this checks that nothing here stops it.
  it("sends a transaction again after a failure that proves it was not delivered (429)", async () => {
    const { error, sends, nonceBefore, nonceAfter } = await sendThroughFlakyProxy("429");
    expect(error).to.equal(undefined);
    expect(sends).to.equal(2);
    expect(nonceAfter - nonceBefore).to.equal(1);
  });
});

import { expect } from "chai";
import { mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { encryptKeystoreJson, JsonRpcProvider, Network, Wallet } from "ethers";
import {
  ConfigError,
  deploymentFile,
  loadSigner,
  localAccount,
  readDeployment,
  resolveSettings,
  writeDeployment,
} from "../../lib/config.js";

describe("configuration", () => {
  const provider = new JsonRpcProvider("http://127.0.0.1:1", Network.from(31337n), { staticNetwork: true });
  after(() => provider.destroy());

  it("takes overrides over environment over defaults", () => {
    const env = { ANCHORFL_RPC_URL: "http://env:8545", ANCHORFL_HOME: "/data/fl", ANCHORFL_ACCOUNT: "3" };
    const s = resolveSettings(env, { rpcUrl: "http://flag:8545" }, "/work");
    expect(s.rpcUrl).to.equal("http://flag:8545");
    expect(s.home).to.equal("/data/fl");
    expect(s.localAccount).to.equal(3);
    const d = resolveSettings({}, {}, "/work");
    expect(d.rpcUrl).to.equal("http://127.0.0.1:8545");
    expect(d.home).to.equal("/work/.anchorfl");
  });

  it("rejects a nonsense account index", () => {
    expect(() => resolveSettings({ ANCHORFL_ACCOUNT: "-1" })).to.throw(ConfigError, "account index");
    expect(() => resolveSettings({ ANCHORFL_ACCOUNT: "x" })).to.throw(ConfigError, "account index");
  });

  it("uses Hardhat's development accounts on a local chain only", async () => {
    const s = resolveSettings({ ANCHORFL_ACCOUNT: "1" });
    const signer = await loadSigner(s, provider, 31337n);
    expect(await signer.getAddress()).to.equal("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    const err = await loadSigner(s, provider, 1n).catch((e) => e);
    expect(err).to.be.instanceOf(ConfigError);
    expect(err.message).to.include("no key configured for chain 1");
  });

  it("loads a private key from the environment and rejects a malformed one", async () => {
    const key = localAccount(5).privateKey;
    const signer = await loadSigner(resolveSettings({ ANCHORFL_PRIVATE_KEY: key }), provider, 1n);
    expect(await signer.getAddress()).to.equal(localAccount(5).address);
    const err = await loadSigner(resolveSettings({ ANCHORFL_PRIVATE_KEY: "0x1234" }), provider, 1n).catch((e) => e);
    expect(err).to.be.instanceOf(ConfigError);
    expect(err.message).to.not.include("0x1234");
  });

  it("decrypts an encrypted JSON keystore and names a wrong password", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "anchorfl-ks-"));
    const wallet = Wallet.createRandom();
    const file = path.join(dir, "key.json");
    await writeFile(file, await encryptKeystoreJson({ address: wallet.address, privateKey: wallet.privateKey }, "secret", { scrypt: { N: 1024 } }));
    const signer = await loadSigner(resolveSettings({ ANCHORFL_KEYSTORE: file, ANCHORFL_KEYSTORE_PASSWORD: "secret" }), provider, 5n);
    expect(await signer.getAddress()).to.equal(wallet.address);
    const wrong = await loadSigner(resolveSettings({ ANCHORFL_KEYSTORE: file, ANCHORFL_KEYSTORE_PASSWORD: "nope" }), provider, 5n).catch((e) => e);
    expect(wrong).to.be.instanceOf(ConfigError);
    expect(wrong.message).to.include("cannot decrypt keystore");
    const noPassword = await loadSigner(resolveSettings({ ANCHORFL_KEYSTORE: file }), provider, 5n).catch((e) => e);
    expect(noPassword.message).to.include("needs a password");
  });

  it("records deployments per chain id and reads them back; missing or corrupt files are named", async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), "anchorfl-home-"));
    const missing = await readDeployment(home, 31337n).catch((e) => e);
    expect(missing).to.be.instanceOf(ConfigError);
    expect(missing.message).to.include(deploymentFile(home, 31337n));
    const record = {
      chainId: "31337",
      coordinator: localAccount(1).address,
      token: localAccount(2).address,
      deployBlock: 7,
      deployedAt: "2026-01-01T00:00:00.000Z",
    };
    await writeDeployment(home, record);
    expect(await readDeployment(home, 31337n)).to.deep.equal(record);
    await writeFile(deploymentFile(home, 31337n), "{not json");
    expect((await readDeployment(home, 31337n).catch((e) => e)).message).to.include("not valid JSON");
    await writeFile(deploymentFile(home, 31337n), JSON.stringify({ ...record, coordinator: "0x12" }));
    expect((await readDeployment(home, 31337n).catch((e) => e)).message).to.include("invalid address");
  });
});

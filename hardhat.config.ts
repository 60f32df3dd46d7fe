import { createRequire } from "node:module";
import hardhatToolboxMochaEthers from "@nomicfoundation/hardhat-toolbox-mocha-ethers";
import { configVariable, defineConfig } from "hardhat/config";

const require = createRequire(import.meta.url);

// Compile with solc-js from the `solc` npm package: no compiler download, same bytecode everywhere.
const SOLC_VERSION: string = require("solc/package.json").version;
const SOLC_PATH = require.resolve("solc/soljson.js");

export default defineConfig({
  plugins: [hardhatToolboxMochaEthers],
  solidity: {
    version: SOLC_VERSION,
    path: SOLC_PATH,
    settings: {
      evmVersion: "cancun",
      optimizer: { enabled: true, runs: 1000 },
    },
  },
  paths: {
    tests: { mocha: "test", solidity: "test" },
  },
  test: {
    mocha: { timeout: 120_000 },
  },
  networks: {
    // `npx hardhat node --hostname 127.0.0.1` (npm run node) serves this one.
    localhost: {
      type: "http",
      chainType: "l1",
      url: "http://127.0.0.1:8545",
    },
    // Any other EVM network: the RPC URL and the deployer key come from the environment or
    // Hardhat's encrypted keystore (`npx hardhat keystore set ANCHORFL_PRIVATE_KEY`), never a file.
    remote: {
      type: "http",
      chainType: "l1",
      url: configVariable("ANCHORFL_RPC_URL"),
      accounts: [configVariable("ANCHORFL_PRIVATE_KEY")],
    },
  },
});

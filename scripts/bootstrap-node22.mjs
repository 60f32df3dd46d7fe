// Hardhat 3 and its simulator need Node >= 22. The `node` devDependency links Node 22 into
// node_modules/.bin, which npm scripts put first on PATH, so this script already runs under it.
// A first install on an older system Node skipped the packages that declare `node >= 22`
// (the EDR simulator's native build among them); one more install under Node 22 adds them,
// leaving package-lock.json unchanged.
import { execFileSync } from "node:child_process";

const major = Number(process.versions.node.split(".")[0]);
if (major < 22) {
  console.error(
    `anchorfl: running on Node ${process.versions.node}; expected Node 22 from node_modules/.bin. ` +
      "Run npm scripts (npm run …) or npx so that Node 22 is used.",
  );
  process.exit(1);
}
if (process.env.ANCHORFL_BOOTSTRAPPED === "1") process.exit(0);

execFileSync("npm", ["install", "--no-audit", "--no-fund", "--ignore-scripts", "--no-save"], {
  stdio: "inherit",
  env: { ...process.env, ANCHORFL_BOOTSTRAPPED: "1" },
});

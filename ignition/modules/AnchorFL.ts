// Deploys AnchorFL's on-chain part: the demo stake token and the coordinator. Tasks are created
// afterwards (`anchorfl task create`), so one deployment serves many tasks.
// Parameter: DemoToken.owner, the account allowed to mint demo tokens (default: the deployer).
import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

export default buildModule("AnchorFL", (m) => {
  const owner = m.getParameter("owner", m.getAccount(0));
  const token = m.contract("DemoToken", [owner]);
  const coordinator = m.contract("AnchorCoordinator");
  return { token, coordinator };
});

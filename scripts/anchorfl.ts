// The one command line for every role: task owner, participant, aggregator, auditor.
// `npm run anchorfl -- <command>`; `--help` on any command lists its options.
import { Command } from "commander";
import { AnchorFLError } from "../lib/errors.js";
import { addGlobalOptions } from "./commands/context.js";
import { register as registerAggregate } from "./commands/aggregate.js";
import { register as registerAudit } from "./commands/audit.js";
import { register as registerClient } from "./commands/client.js";
import { register as registerTask } from "./commands/task.js";

const program = addGlobalOptions(new Command("anchorfl"))
  .description("AnchorFL: federated learning anchored on an EVM chain, content on IPFS")
  .showHelpAfterError();
registerTask(program);
registerClient(program);
registerAggregate(program);
registerAudit(program);

try {
  await program.parseAsync();
} catch (error) {
  if (error instanceof AnchorFLError) {
    console.error(`error: ${error.message}`);
    if (process.env.ANCHORFL_DEBUG) console.error(error.stack);
  } else {
    console.error(error);
  }
  process.exitCode = 1;
}

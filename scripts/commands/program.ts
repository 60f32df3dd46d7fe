// The `anchorfl` command line with every command registered: the CLI entry point and the
// in-process CLI tests build it the same way.
import { Command } from "commander";
import { register as registerAggregate } from "./aggregate.js";
import { register as registerAudit } from "./audit.js";
import { register as registerClient } from "./client.js";
import { addGlobalOptions } from "./context.js";
import { register as registerTask } from "./task.js";

export function buildProgram(): Command {
  const program = addGlobalOptions(new Command("anchorfl"))
    .description("AnchorFL: federated learning anchored on an EVM chain, content on IPFS")
    .showHelpAfterError();
  registerTask(program);
  registerClient(program);
  registerAggregate(program);
  registerAudit(program);
  return program;
}

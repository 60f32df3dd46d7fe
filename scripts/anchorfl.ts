// The one command line for every role: task owner, participant, aggregator, auditor.
// `npm run anchorfl -- <command>`; `--help` on any command lists its options.
import { AnchorFLError } from "../lib/errors.js";
import { buildProgram } from "./commands/program.js";

try {
  await buildProgram().parseAsync();
} catch (error) {
  if (error instanceof AnchorFLError) {
    console.error(`error: ${error.message}`);
    if (process.env.ANCHORFL_DEBUG) console.error(error.stack);
  } else {
    console.error(error);
  }
  process.exitCode = 1;
}

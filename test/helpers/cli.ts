// Runs one `anchorfl …` command line in-process, with a fresh program each time (as a new
// process would have), and returns what it printed.
import { buildProgram } from "../../scripts/commands/program.js";

export async function runCli(globalArgs: readonly string[], args: readonly string[]): Promise<string> {
  const program = buildProgram().exitOverride();
  const out: string[] = [];
  const original = console.log;
  console.log = (...parts: unknown[]) => out.push(parts.join(" "));
  try {
    await program.parseAsync([...globalArgs, ...args], { from: "user" });
  } finally {
    console.log = original;
  }
  return out.join("\n");
}

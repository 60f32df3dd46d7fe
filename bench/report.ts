// Benchmarks print a table and keep their own section of docs/BENCHMARKS.md up to date.
// Each section sits between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`, so several
// benchmark scripts share one file without overwriting each other.
import { readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { subset, type Dataset } from "../client/data/dataset.js";

export const BENCHMARKS_FILE = path.join(import.meta.dirname, "..", "docs", "BENCHMARKS.md");

/** A progress line on stderr, stamped with the UTC time; stdout keeps the tables. */
export const log = (line: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

/** The first `n` examples of a data set (all of them when it holds fewer). */
export const firstN = (ds: Dataset, n: number) => subset(ds, Array.from({ length: Math.min(n, ds.n) }, (_, i) => i));

/** One line naming the machine a benchmark ran on. */
export function machineLine(): string {
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  const mem = (os.totalmem() / 2 ** 30).toFixed(0);
  return `${os.cpus().length} × ${cpu}, ${mem} GiB RAM, Node ${process.versions.node}, ${os.platform()} ${os.arch()}`;
}

/** Formats rows as a GitHub markdown table. */
export function markdownTable(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const line = (cells: readonly (string | number)[]) => `| ${cells.map(String).join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** Replaces (or appends) the section `name` of docs/BENCHMARKS.md with `markdown`. */
export async function writeSection(name: string, markdown: string, file = BENCHMARKS_FILE): Promise<void> {
  const start = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    text = "# Benchmarks\n\nEvery table here is written by a script in bench/; rerun it to refresh its section.\n";
  }
  const block = `${start}\n${markdown.trim()}\n${end}`;
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  text = from >= 0 && to > from ? text.slice(0, from) + block + text.slice(to + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  await writeFile(file, text);
}

import { mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { HippoError } from "../errors.js";
import { writeFileAtomic } from "../io/node-files.js";
import { buildPlots, renderSvg } from "./plots.js";
import { buildReport, renderHtml, renderMarkdown } from "./report.js";
import type { BenchResults } from "./types.js";

export interface WrittenReport {
  dir: string;
  files: string[];
}

/**
 * Writes a run's report into `dir`: plots/<name>.svg and .vl.json, results.json, README.md (Markdown, the
 * SVGs beside it) and report.html (self-contained). Every file is written atomically; the reports last, so
 * a report never points at plots that are not there yet.
 */
export async function writeReport(results: BenchResults, dir: string): Promise<WrittenReport> {
  const info = await stat(dir).catch(() => null);
  if (info && !info.isDirectory()) throw new HippoError(`--out ${dir}: exists and is not a directory`);
  await mkdir(join(dir, "plots"), { recursive: true }).catch((e: Error) => {
    throw new HippoError(`--out ${dir}: cannot create the directory (${e.message})`);
  });
  const files: string[] = [];
  const write = async (name: string, data: string) => {
    await writeFileAtomic(join(dir, name), data);
    files.push(name);
  };
  const plots = buildPlots(results);
  const svgs = new Map<string, string>();
  for (const plot of plots) {
    const svg = await renderSvg(plot.spec);
    svgs.set(plot.name, svg);
    await write(`plots/${plot.name}.svg`, svg);
    await write(`plots/${plot.name}.vl.json`, JSON.stringify(plot.spec, null, 1) + "\n");
  }
  await write("results.json", JSON.stringify(results, null, 1) + "\n");
  const { title, blocks } = buildReport(results, plots);
  await write("report.html", renderHtml(title, blocks, svgs));
  await write("README.md", renderMarkdown(title, blocks));
  return { dir, files };
}

import { parse, View } from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { CLASS_COLORS, CLASS_LABELS, OP_CLASSES } from "./classify.js";
import { formatTokens } from "./format.js";
import type { BenchResults, ByClass } from "./types.js";

/**
 * The report's figures as Vega-Lite specs, rendered to SVG headless (Vega-Lite → Vega → View.toSVG with
 * the "none" renderer: no browser, no canvas). Each plot is returned with its spec so the report can ship
 * both.
 */

export interface Plot {
  /** File stem: plots/<name>.svg and plots/<name>.vl.json. */
  name: string;
  title: string;
  spec: TopLevelSpec;
}

const MODEL_COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const WIDTH = 560;
const HEIGHT = 320;

const BASE_CONFIG = {
  font: "Helvetica, Arial, sans-serif",
  background: "white",
  view: { stroke: "#ddd" },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: "#eee" },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 260 },
  title: { fontSize: 14, anchor: "start" as const },
};

function modelScale(r: BenchResults) {
  const labels = r.models.map((m) => m.label);
  return { domain: labels, range: MODEL_COLORS.slice(0, labels.length) };
}

function classScale(present: Set<string>) {
  const classes = OP_CLASSES.filter((c) => present.has(c));
  return { domain: classes.map((c) => CLASS_LABELS[c]), range: classes.map((c) => CLASS_COLORS[c]) };
}

/** A quantitative log2 axis of token counts, ticks at the given values, labelled 256, 1K, 64K. */
const logAxis = (title: string, values?: number[]) => ({
  type: "quantitative" as const, scale: { type: "log" as const, base: 2 }, title,
  ...(values ? { axis: { values, labelExpr: "datum.value >= 1024 ? format(datum.value / 1024, '~s') + 'K' : datum.value" } } : {}),
});

function powersOfTwo(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let x = 2 ** Math.floor(Math.log2(lo)); x <= hi; x *= 2) if (x >= lo) out.push(x);
  return out;
}

function spec(title: string, body: Record<string, unknown>): TopLevelSpec {
  return { $schema: "https://vega.github.io/schema/vega-lite/v6.json", title, config: BASE_CONFIG, ...body } as TopLevelSpec;
}

function lengthPlot(r: BenchResults, title: string, y: { field: string; title: string }): TopLevelSpec {
  const label = (name: string) => r.models.find((m) => m.name === name)?.label ?? name;
  const data = r.prefill.filter((p) => p.batch === 1).map((p) => ({
    model: label(p.model), length: p.length, source: p.source, seconds: p.ms / 1000, tokensPerS: p.tokensPerS,
  }));
  // The last measured point is repeated as projected so that the dashed line starts where the solid one ends.
  for (const m of r.models) {
    const measured = data.filter((d) => d.model === m.label && d.source === "measured").sort((a, b) => a.length - b.length).at(-1);
    if (measured && data.some((d) => d.model === m.label && d.source === "projected")) data.push({ ...measured, source: "projected" });
  }
  const lengths = data.map((d) => d.length);
  return spec(title, {
    width: WIDTH, height: HEIGHT, data: { values: data },
    encoding: {
      x: { field: "length", ...logAxis("prompt length (tokens)", powersOfTwo(Math.min(...lengths), Math.max(...lengths))) },
      y: { field: y.field, type: "quantitative", scale: { type: "log" }, title: y.title },
      color: { field: "model", type: "nominal", scale: modelScale(r), title: "model" },
    },
    layer: [
      {
        mark: { type: "line", strokeWidth: 2 },
        encoding: {
          strokeDash: { field: "source", type: "nominal", scale: { domain: ["measured", "projected"], range: [[1, 0], [5, 4]] }, title: "" },
          detail: { field: "source" },
        },
      },
      { mark: { type: "point", filled: true, size: 45 }, transform: [{ filter: "datum.source === 'measured'" }] },
    ],
  });
}

function decodePlot(r: BenchResults): TopLevelSpec {
  const label = (name: string) => r.models.find((m) => m.name === name)?.label ?? name;
  const data = r.decode.filter((d) => d.batch === 1).map((d) => ({ model: label(d.model), context: d.context, ms: d.msPerToken }));
  const xs = data.map((d) => d.context);
  return spec("Decode latency per token vs context length (batch 1, full depth)", {
    width: WIDTH, height: HEIGHT, data: { values: data },
    mark: { type: "line", point: { filled: true, size: 45 }, strokeWidth: 2 },
    encoding: {
      x: { field: "context", ...logAxis("tokens of context", powersOfTwo(Math.min(...xs), Math.max(...xs))) },
      y: { field: "ms", type: "quantitative", scale: { type: "log" }, title: "ms per token" },
      color: { field: "model", type: "nominal", scale: modelScale(r), title: "model" },
    },
  });
}

function batchPlot(r: BenchResults): TopLevelSpec {
  const label = (name: string) => r.models.find((m) => m.name === name)?.label ?? name;
  const o = r.options;
  const decode = r.decode.filter((d) => d.context === o.decodeBatchContext).map((d) => ({ model: label(d.model), batch: d.batch, tps: d.tokensPerS }));
  const prefill = r.prefill.filter((p) => p.source === "measured" && p.length === o.prefillBatchLength).map((p) => ({ model: label(p.model), batch: p.batch, tps: p.tokensPerS }));
  const panel = (title: string, values: { batch: number }[]) => ({
    title, width: WIDTH / 2 - 20, height: HEIGHT - 40, data: { values },
    mark: { type: "line", point: { filled: true, size: 45 }, strokeWidth: 2 },
    encoding: {
      x: { field: "batch", type: "quantitative", scale: { type: "log", base: 2 }, title: "batch size", axis: { values: [...new Set(values.map((v) => v.batch))] } },
      y: { field: "tps", type: "quantitative", scale: { type: "log" }, title: "tokens / s" },
      color: { field: "model", type: "nominal", scale: modelScale(r), title: "model" },
    },
  });
  return spec("Batch sweeps (full depth)", {
    hconcat: [
      panel(`decode at ${formatTokens(o.decodeBatchContext)} tokens of context`, decode),
      panel(`prefill of ${formatTokens(o.prefillBatchLength)}-token prompts`, prefill),
    ],
  });
}

function classRows(byClass: ByClass): { cls: string; ms: number }[] {
  return OP_CLASSES.filter((c) => byClass[c] > 0).map((c) => ({ cls: CLASS_LABELS[c], ms: byClass[c] }));
}

function breakdownPlot(r: BenchResults, phase: "prefill" | "decode"): TopLevelSpec {
  const label = (name: string) => r.models.find((m) => m.name === name)?.label ?? name;
  const points = phase === "prefill"
    ? r.prefill.filter((p) => p.batch === 1).map((p) => ({ model: p.model, x: p.length, projected: p.source === "projected", byClass: p.byClass }))
    : r.decode.filter((d) => d.batch === 1).map((d) => ({ model: d.model, x: d.context, projected: false, byClass: d.byClass }));
  const data = points.flatMap((p) => classRows(p.byClass).map((c) => ({
    model: label(p.model), x: p.x, tick: `${formatTokens(p.x)}${p.projected ? "*" : ""}`, ...c,
  })));
  const present = new Set(points.flatMap((p) => OP_CLASSES.filter((c) => p.byClass[c] > 0)));
  const ticks = [...new Map(data.map((d) => [d.x, d.tick])).entries()].sort((a, b) => a[0] - b[0]).map(([, t]) => t);
  const what = phase === "prefill" ? "prompt length (* projected)" : "tokens of context";
  return spec(`Share of ${phase} time by op class (batch 1, full depth)`, {
    data: { values: data },
    facet: { column: { field: "model", type: "nominal", title: null, sort: r.models.map((m) => m.label) } },
    spec: {
      width: Math.max(90, Math.min(160, 900 / r.models.length)), height: 260,
      mark: { type: "bar" },
      encoding: {
        x: { field: "tick", type: "ordinal", sort: ticks, title: what, axis: { labelAngle: -45 } },
        y: { field: "ms", type: "quantitative", stack: "normalize", title: "share of time", axis: { format: "%" } },
        color: { field: "cls", type: "nominal", scale: classScale(present), title: "op class" },
        order: { field: "cls" },
      },
    },
  });
}

function layerKindPlot(r: BenchResults): TopLevelSpec {
  const label = (name: string) => r.models.find((m) => m.name === name)?.label ?? name;
  const L = Math.max(...r.roofline.filter((x) => x.phase === "prefill").map((x) => x.tokens), 0);
  const data: { row: string; cls: string; us: number }[] = [];
  const present = new Set<string>();
  for (const p of r.prefill.filter((x) => x.batch === 1 && x.source === "measured" && x.length === L)) {
    for (const [kind, byClass] of Object.entries(p.perLayer ?? {})) {
      if (kind === "head") continue;
      for (const c of OP_CLASSES) {
        if (byClass[c] <= 0) continue;
        present.add(c);
        data.push({ row: `${label(p.model)} · ${kind}`, cls: CLASS_LABELS[c], us: (1000 * byClass[c]) / L });
      }
    }
  }
  return spec(`Prefill time of one layer of each kind, per token, at ${formatTokens(L)}-token prompts`, {
    width: WIDTH, height: { step: 22 }, data: { values: data },
    mark: { type: "bar" },
    encoding: {
      y: { field: "row", type: "nominal", title: null, sort: null },
      x: { field: "us", type: "quantitative", title: "µs per token per layer", stack: "zero" },
      color: { field: "cls", type: "nominal", scale: classScale(present), title: "op class" },
    },
  });
}

function memoryPlot(r: BenchResults): TopLevelSpec {
  const label = (name: string) => r.models.find((m) => m.name === name)?.label ?? name;
  const data = r.memory.map((m) => ({ model: label(m.model), context: m.context, mib: m.totalBytes / 2 ** 20 }));
  const xs = data.map((d) => d.context);
  return spec("Recurrent state + KV cache per sequence vs context (f32)", {
    width: WIDTH, height: HEIGHT, data: { values: data },
    mark: { type: "line", point: { filled: true, size: 30 }, strokeWidth: 2 },
    encoding: {
      x: { field: "context", ...logAxis("tokens of context", powersOfTwo(Math.min(...xs), Math.max(...xs)).filter((_, i) => i % 2 === 0)) },
      y: { field: "mib", type: "quantitative", scale: { type: "log" }, title: "MiB per sequence" },
      color: { field: "model", type: "nominal", scale: modelScale(r), title: "model" },
    },
  });
}

function budgetPlot(r: BenchResults): TopLevelSpec {
  const label = (name: string) => r.models.find((m) => m.name === name)?.label ?? name;
  const data = r.budget.rows.filter((b) => b.maxBatch > 0).map((b) => ({ model: label(b.model), context: b.context, batch: b.maxBatch }));
  const xs = r.budget.rows.map((d) => d.context);
  return spec(`Largest decode batch that fits ${(r.budget.bytes / 2 ** 30).toFixed(1)} GiB (in-place state updates)`, {
    width: WIDTH, height: HEIGHT, data: { values: data },
    mark: { type: "line", point: { filled: true, size: 45 }, strokeWidth: 2 },
    encoding: {
      x: { field: "context", ...logAxis("tokens of context", [...new Set(xs)]) },
      y: { field: "batch", type: "quantitative", scale: { type: "log" }, title: "max batch (sequences)" },
      color: { field: "model", type: "nominal", scale: modelScale(r), title: "model" },
    },
  });
}

function rooflinePlot(r: BenchResults): TopLevelSpec {
  const label = (name: string) => r.models.find((m) => m.name === name)?.label ?? name;
  const { flopsPerS, bytesPerS } = r.ceilings;
  // One point per (model, phase, op class): total FLOPs / total bytes, achieved FLOP/s.
  const groups = new Map<string, { model: string; phase: string; cls: string; flops: number; bytes: number; ms: number }>();
  for (const x of r.roofline) {
    if (x.flops <= 0 || x.bytes <= 0) continue;
    const key = `${x.model}|${x.phase}|${x.cls}`;
    const g = groups.get(key) ?? { model: label(x.model), phase: x.phase, cls: x.cls, flops: 0, bytes: 0, ms: 0 };
    g.flops += x.flops;
    g.bytes += x.bytes;
    g.ms += x.ms;
    groups.set(key, g);
  }
  const points = [...groups.values()].map((g) => ({
    model: g.model, phase: g.phase, cls: CLASS_LABELS[g.cls as keyof typeof CLASS_LABELS], intensity: g.flops / g.bytes, gflops: g.flops / (g.ms / 1000) / 1e9,
  }));
  const lo = Math.min(0.01, ...points.map((p) => p.intensity)) / 2;
  const hi = Math.max(100, ...points.map((p) => p.intensity)) * 2;
  const roof: { intensity: number; gflops: number }[] = [];
  for (let x = lo; x <= hi * 1.0001; x *= 1.25) roof.push({ intensity: x, gflops: Math.min(flopsPerS, x * bytesPerS) / 1e9 });
  const present = new Set(r.roofline.map((x) => x.cls));
  return spec(`Roofline: measured ceilings ${(bytesPerS / 1e9).toFixed(1)} GB/s, ${(flopsPerS / 1e9).toFixed(2)} GFLOP/s (${r.backend.name})`, {
    width: WIDTH, height: HEIGHT + 40,
    layer: [
      {
        data: { values: roof }, mark: { type: "line", color: "#333", strokeWidth: 1.5 },
        encoding: {
          x: { field: "intensity", type: "quantitative", scale: { type: "log", domain: [lo, hi] }, title: "arithmetic intensity (FLOP / byte)" },
          y: { field: "gflops", type: "quantitative", scale: { type: "log" }, title: "achieved GFLOP/s" },
        },
      },
      {
        data: { values: points }, mark: { type: "point", filled: true, size: 70, opacity: 0.85 },
        encoding: {
          x: { field: "intensity", type: "quantitative" },
          y: { field: "gflops", type: "quantitative" },
          color: { field: "cls", type: "nominal", scale: classScale(present), title: "op class" },
          shape: { field: "phase", type: "nominal", scale: { domain: ["prefill", "decode"], range: ["circle", "triangle-up"] }, title: "phase" },
        },
      },
    ],
  });
}

export function buildPlots(r: BenchResults): Plot[] {
  const plots: Plot[] = [
    { name: "prefill-latency", title: "Prefill latency", spec: lengthPlot(r, "Prefill latency vs prompt length (batch 1, full depth; dashed: projected)", { field: "seconds", title: "seconds" }) },
    { name: "prefill-throughput", title: "Prefill throughput", spec: lengthPlot(r, "Prefill throughput vs prompt length (batch 1, full depth; dashed: projected)", { field: "tokensPerS", title: "tokens / s" }) },
    { name: "decode-latency", title: "Decode latency", spec: decodePlot(r) },
    { name: "batch-sweeps", title: "Batch sweeps", spec: batchPlot(r) },
    { name: "prefill-op-classes", title: "Prefill time by op class", spec: breakdownPlot(r, "prefill") },
    { name: "decode-op-classes", title: "Decode time by op class", spec: breakdownPlot(r, "decode") },
    { name: "layer-kinds", title: "Time per layer kind", spec: layerKindPlot(r) },
    { name: "memory-per-sequence", title: "State vs KV cache", spec: memoryPlot(r) },
    { name: "memory-budget", title: "Batch that fits the budget", spec: budgetPlot(r) },
    { name: "roofline", title: "Roofline", spec: rooflinePlot(r) },
  ];
  return plots;
}

/** Vega-Lite spec → SVG text, without a browser. */
export async function renderSvg(vl: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(vl).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

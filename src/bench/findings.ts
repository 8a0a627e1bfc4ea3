import { CLASS_LABELS, OP_CLASSES, type OpClass } from "./classify.js";
import { formatBytes, formatMs, formatTokens, percent } from "./format.js";
import type { BenchResults, ByClass } from "./types.js";

/**
 * The headline numbers of a run, as sentences: where attention overtakes or is overtaken, which op class
 * dominates each model, how the recurrent state compares with the KV cache, what fits the budget, how far
 * ops are from their floors, and how well composition matched full-depth runs.
 */

interface Curve {
  x: number;
  y: number;
  projected: boolean;
}

/** Where curve a stops being below (or above) curve b, interpolated in log–log between shared x values. */
export function crossings(a: Curve[], b: Curve[]): { x: number; aBelowBefore: boolean; projected: boolean }[] {
  const bx = new Map(b.map((p) => [p.x, p]));
  const shared = a.filter((p) => bx.has(p.x)).sort((p, q) => p.x - q.x);
  const out: { x: number; aBelowBefore: boolean; projected: boolean }[] = [];
  for (let i = 1; i < shared.length; i++) {
    const p0 = shared[i - 1], p1 = shared[i];
    const d0 = Math.log(p0.y / bx.get(p0.x)!.y);
    const d1 = Math.log(p1.y / bx.get(p1.x)!.y);
    if (d0 === 0 || Math.sign(d0) === Math.sign(d1)) continue;
    const t = d0 / (d0 - d1);
    const x = Math.exp(Math.log(p0.x) + t * (Math.log(p1.x) - Math.log(p0.x)));
    out.push({ x, aBelowBefore: d0 < 0, projected: p1.projected || bx.get(p1.x)!.projected });
  }
  return out;
}

function topClasses(c: ByClass, n: number): string {
  const all = OP_CLASSES.reduce((s, k) => s + c[k], 0);
  return OP_CLASSES.filter((k) => c[k] > 0).sort((x, y) => c[y] - c[x]).slice(0, n)
    .map((k) => `${CLASS_LABELS[k]} ${percent(c[k], all)}`).join(", ");
}

function share(c: ByClass, cls: OpClass): number {
  const all = OP_CLASSES.reduce((s, k) => s + c[k], 0);
  return all > 0 ? c[cls] / all : 0;
}

export function deriveFindings(r: BenchResults): string[] {
  const out: string[] = [];
  const label = (name: string) => r.models.find((m) => m.name === name)?.label ?? name;
  const prefill = (name: string): Curve[] => r.prefill.filter((p) => p.model === name && p.batch === 1)
    .map((p) => ({ x: p.length, y: p.ms, projected: p.source === "projected" }));
  const decode = (name: string): Curve[] => r.decode.filter((d) => d.model === name && d.batch === 1)
    .map((d) => ({ x: d.context, y: d.msPerToken, projected: false }));
  const attention = r.models.find((m) => m.name === "transformer") ?? r.models.find((m) => m.kvBytesPerToken > 0 && m.stateBytesPerSequence === 0);

  // 1. Where attention overtakes or is overtaken.
  if (attention) {
    for (const m of r.models) {
      if (m === attention) continue;
      for (const [what, curve, unit] of [["prefill", prefill, "prompt"], ["decode", decode, "context"]] as const) {
        const a = curve(attention.name);
        const b = curve(m.name);
        if (a.length === 0 || b.length === 0) continue;
        const xs = crossings(a, b);
        const first = a.find((p) => b.some((q) => q.x === p.x));
        const last = [...a].reverse().find((p) => b.some((q) => q.x === p.x));
        if (!first || !last) continue;
        const ratio = (p: Curve) => p.y / b.find((q) => q.x === p.x)!.y;
        const range = `${formatTokens(first.x)}–${formatTokens(last.x)}${last.projected ? " (beyond the measured lengths: projected)" : ""}`;
        if (xs.length === 0) {
          const faster = ratio(last) < 1;
          out.push(`${cap(what)}: ${attention.label} is ${faster ? "faster" : "slower"} than ${m.label} at every ${unit} length in ${range} ` +
            `(${fmtRatio(ratio(first))} at ${formatTokens(first.x)}, ${fmtRatio(ratio(last))} at ${formatTokens(last.x)}).`);
        } else {
          const parts = xs.map((x, i) => `${i === 0 ? (x.aBelowBefore ? "faster" : "slower") + ` than ${m.label}` : "then " + (x.aBelowBefore ? "faster" : "slower")} ` +
            `up to ≈${formatTokens(x.x)} tokens${x.projected ? " (projected)" : ""}`);
          const after = xs[xs.length - 1].aBelowBefore ? "slower" : "faster";
          out.push(`${cap(what)}: ${attention.label} is ${parts.join(", ")} and ${after} beyond ` +
            `(${attention.label}/${m.label} time ${fmtRatio(ratio(first))} at ${formatTokens(first.x)}, ${fmtRatio(ratio(last))} at ${formatTokens(last.x)}${last.projected ? ", projected" : ""}).`);
        }
      }
    }
  }

  // 2. Which op dominates each model: at the longest measured prompt, at the longest projected one, and in decode.
  for (const m of r.models) {
    const pts = r.prefill.filter((p) => p.model === m.name && p.batch === 1).sort((a, b) => a.length - b.length);
    const measured = pts.filter((p) => p.source === "measured").at(-1);
    const projected = pts.filter((p) => p.source === "projected").at(-1);
    const dec = r.decode.filter((d) => d.model === m.name && d.batch === 1).sort((a, b) => a.context - b.context).at(-1);
    const parts: string[] = [];
    if (measured) parts.push(`prefill at ${formatTokens(measured.length)}: ${topClasses(measured.byClass, 3)}`);
    if (projected) parts.push(`at ${formatTokens(projected.length)} (projected): ${topClasses(projected.byClass, 3)}`);
    if (dec) parts.push(`decode at ${formatTokens(dec.context)} context: ${topClasses(dec.byClass, 3)}`);
    if (parts.length) out.push(`${m.label} time by op class — ${parts.join("; ")}.`);
    if (m.name === "h3" && measured) {
      const fft = share(measured.byClass, "fft_conv");
      const fftP = projected ? share(projected.byClass, "fft_conv") : null;
      out.push(`H3's FFT convolution takes ${percent(fft, 1)} of prefill at ${formatTokens(measured.length)} tokens` +
        `${fftP !== null ? ` and ${percent(fftP, 1)} at ${formatTokens(projected!.length)} (projected)` : ""}; its attention layer ` +
        `${percent(share(measured.byClass, "attention"), 1)}${projected ? ` and ${percent(share(projected.byClass, "attention"), 1)}` : ""}.`);
    }
  }

  // 3. Recurrent state vs KV cache.
  const ctxs = [2048, 65536];
  if (attention) {
    for (const m of r.models) {
      if (m.kvBytesPerToken > 0 || m.stateBytesPerSequence === 0) continue;
      const equal = m.stateBytesPerSequence / attention.kvBytesPerToken;
      out.push(`${m.label} carries ${formatBytes(m.stateBytesPerSequence)} of recurrent state per sequence at any context; ` +
        `${attention.label}'s KV cache reaches that size after ${formatTokens(equal)} tokens and is ` +
        ctxs.map((c) => `${fmtRatio((attention.kvBytesPerToken * c) / m.stateBytesPerSequence)} larger at ${formatTokens(c)}`).join(", ") + ".");
    }
    for (const m of r.models) {
      if (m.kvBytesPerToken === 0 || m === attention) continue;
      const mixers = Object.entries(m.layers).filter(([k]) => k !== "mlp").reduce((a, [, n]) => a + n, 0);
      out.push(`${m.label} (attention in ${m.layers.attention ?? 0} of ${mixers} mixer layers) carries ${formatBytes(m.stateBytesPerSequence)} of state plus ` +
        `${formatBytes(m.kvBytesPerToken)} of KV cache per token: ${formatBytes(m.stateBytesPerSequence + m.kvBytesPerToken * 65536)} at 64K, ` +
        `${fmtRatio((attention.kvBytesPerToken * 65536) / (m.stateBytesPerSequence + m.kvBytesPerToken * 65536))} less than ${attention.label}.`);
    }
  }

  // 4. What fits the budget.
  const longest = Math.max(...r.budget.rows.map((b) => b.context));
  const atLongest = r.budget.rows.filter((b) => b.context === longest);
  if (atLongest.length) {
    out.push(`With ${formatBytes(r.budget.bytes)} of memory, decoding at ${formatTokens(longest)} tokens of context fits a batch of ` +
      atLongest.map((b) => `${b.maxBatch} (${label(b.model)})`).join(", ") + " with in-place state updates; as the CPU backend runs now " +
      "(a step keeps the old and the new state and KV cache) " + atLongest.map((b) => `${b.maxBatchAsRun}`).join(", ") + ".");
  }

  // 5. KV-cache appends and the LM head in decode.
  if (attention) {
    const d = r.decode.filter((x) => x.model === attention.name && x.batch === 1).sort((a, b) => b.context - a.context)[0];
    if (d) {
      out.push(`${attention.label} decode at ${formatTokens(d.context)} context: ${formatMs(d.msPerToken)} per token, of which attention ` +
        `${percent(share(d.byClass, "attention"), 1)} and KV-cache appends ${percent(share(d.byClass, "kv_cache"), 1)} ` +
        "(the append copies the whole cache into a new tensor every step).");
    }
  }
  for (const m of r.models) {
    const d = r.decode.filter((x) => x.model === m.name && x.batch === 1).sort((a, b) => a.context - b.context)[0];
    if (d && m.kvBytesPerToken === 0) {
      out.push(`${m.label} decode: ${formatMs(d.msPerToken)} per token at any context; the LM head is ${percent(share(d.byClass, "lm_head"), 1)} of it.`);
    }
  }

  // 6. Batch sweeps.
  for (const m of r.models) {
    const ds = r.decode.filter((d) => d.model === m.name && d.context === r.options.decodeBatchContext).sort((a, b) => a.batch - b.batch);
    if (ds.length > 1) {
      const a = ds[0], b = ds[ds.length - 1];
      out.push(`${m.label} decode throughput at ${formatTokens(a.context)} context: ${a.tokensPerS.toFixed(1)} tokens/s at batch ${a.batch}, ` +
        `${b.tokensPerS.toFixed(1)} at batch ${b.batch} (${fmtRatio(b.tokensPerS / a.tokensPerS)}).`);
    }
  }

  // 7. Roofline.
  const ridge = r.ceilings.flopsPerS / r.ceilings.bytesPerS;
  for (const phase of ["prefill", "decode"] as const) {
    const rows = r.roofline.filter((x) => x.phase === phase);
    if (rows.length === 0) continue;
    const ms = rows.reduce((s, x) => s + x.ms, 0);
    const floor = rows.reduce((s, x) => s + x.floorMs, 0);
    const mem = rows.filter((x) => x.bound === "memory").reduce((s, x) => s + x.ms, 0);
    const modelMs = (name: string) => rows.filter((x) => x.model === name).reduce((t, x) => t + x.ms, 0);
    const worst = [...rows].filter((x) => x.ms >= 0.05 * modelMs(x.model)).sort((a, b) => b.timesFloor - a.timesFloor)[0];
    out.push(`Roofline (${phase}, ridge point ${ridge.toFixed(2)} FLOP/byte): ${percent(mem, ms)} of op time is in memory-bound ops; ` +
      `all ops together run ${fmtRatio(ms / floor)} their floor` +
      (worst ? `; furthest from it among ops taking ≥ 5% of a model's time: ${worst.op} in ${label(worst.model)} (${worst.kind}), ${fmtRatio(worst.timesFloor)}.` : "."));
  }

  // 8. Activations and the composition check.
  const acts = r.models.map((m) => r.activations.filter((a) => a.model === m.name).at(-1)).filter((a) => a !== undefined);
  if (acts.length) {
    out.push("Prefill activations at their peak (each layer's intermediates are freed when the layer is done): " +
      acts.map((a) => `${label(a!.model)} ${formatBytes(a!.bytesPerToken)}/token (${formatBytes(a!.peakBytes)} at ${formatTokens(a!.length)})`).join(", ") + ".");
  }
  if (r.check.length) {
    out.push("Composition check (full-depth runs vs numbers composed from one layer per kind): " +
      r.check.map((c) => `${label(c.model)} ${c.test} ${c.error >= 0 ? "+" : ""}${(100 * c.error).toFixed(0)}%`).join(", ") + ".");
  }
  return out;
}

function cap(s: string): string {
  return s[0].toUpperCase() + s.slice(1);
}

function fmtRatio(x: number): string {
  return `${x >= 10 ? x.toFixed(0) : x.toFixed(x >= 2 ? 1 : 2)}×`;
}

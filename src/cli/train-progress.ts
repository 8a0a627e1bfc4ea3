import type { EvalReport, StepReport } from "../train/trainer.js";

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** One progress line: bar, update, loss, accuracy, lr, tokens/s, ETA (from this session's pace). */
export function formatProgress(r: StepReport, total: number, lastEval: EvalReport | null, elapsed: number, doneHere: number): string {
  const width = 20;
  const filled = Math.round((width * r.step) / total);
  const bar = "█".repeat(filled) + "·".repeat(width - filled);
  const eta = doneHere > 0 ? (elapsed / doneHere) * (total - r.step) : Infinity;
  const evalPart = lastEval?.exactMatch !== undefined ? ` | eval EM ${(100 * lastEval.exactMatch).toFixed(1)}%` : lastEval ? ` | eval loss ${lastEval.loss.toFixed(3)}` : "";
  return `${bar} ${r.step}/${total} loss ${r.loss.toFixed(4)} acc ${(100 * r.accuracy).toFixed(1)}% lr ${r.lr.toExponential(1)} ` +
    `${Math.round(r.tokensPerSecond)} tok/s ETA ${duration(eta)}${evalPart}`;
}

import type { Ceilings } from "./ceilings.js";
import type { OpClass } from "./classify.js";

/** What `hippo bench` writes to results.json (schema "hippo-bench-1"); sizes in bytes, times in ms. */

export interface BenchOptions {
  backend: string;
  quick: boolean;
  size: string;
  /** Built-in model names (h3, mamba, mamba2, transformer, hybrid, hybrid:<pattern>). */
  models: string[];
  /** Model directories, benchmarked as they are (every layer). */
  modelDirs: string[];
  /** Prefill lengths measured at batch 1. */
  prefillLengths: number[];
  /** Prefill is projected from the measured lengths up to this length. */
  projectTo: number;
  prefillBatches: number[];
  prefillBatchLength: number;
  decodeContexts: number[];
  decodeSteps: number;
  decodeBatches: number[];
  decodeBatchContext: number;
  memoryBudget: number;
  memoryContexts: number[];
  /** Prefill repetitions (best taken) for lengths up to 1024; longer ones run once. */
  reps: number;
  /** "unit": one layer of each kind, composed to full depth; "full": every layer. */
  depth: "unit" | "full";
  /** Also run two models at full depth once and compare with the composed numbers. */
  check: boolean;
  seed: number;
}

export interface ModelInfo {
  name: string;
  label: string;
  description: string;
  parameters: number;
  weightBytes: number;
  dModel: number;
  vocabSize: number;
  /** Residual layers per kind in the full model, and in the model that was run. */
  layers: Record<string, number>;
  measuredLayers: Record<string, number>;
  stateBytesPerSequence: number;
  kvBytesPerToken: number;
}

export type ByClass = Record<OpClass, number>;

export interface PrefillPoint {
  model: string;
  batch: number;
  length: number;
  source: "measured" | "projected";
  ms: number;
  tokensPerS: number;
  byClass: ByClass;
  /** Peak live activation bytes, full depth (measured points). */
  peakBytes?: number;
  /** ms per op class of one layer of each kind ("head": embedding, final norm, LM head). */
  perLayer?: Record<string, ByClass>;
}

export interface DecodePoint {
  model: string;
  batch: number;
  context: number;
  msPerStep: number;
  msPerToken: number;
  tokensPerS: number;
  byClass: ByClass;
  /** Peak live bytes during a step above the state that existed before it (full depth). */
  peakBytes: number;
  perLayer: Record<string, ByClass>;
}

export interface RooflineRow {
  model: string;
  phase: "prefill" | "decode";
  /** Prompt length (prefill) or context (decode), batch 1. */
  tokens: number;
  cls: OpClass;
  kind: string;
  op: string;
  calls: number;
  ms: number;
  flops: number;
  bytes: number;
  /** FLOPs per byte. */
  intensity: number;
  flopsPerS: number;
  bytesPerS: number;
  /** max(flops / peak FLOP/s, bytes / peak bytes/s). */
  floorMs: number;
  bound: "memory" | "compute";
  /** ms / floorMs: how many times slower than the floor. */
  timesFloor: number;
}

export interface MemoryRow {
  model: string;
  context: number;
  stateBytes: number;
  kvBytes: number;
  totalBytes: number;
}

export interface BudgetRow {
  model: string;
  context: number;
  /** Largest decode batch within the budget with in-place state and KV updates. */
  maxBatch: number;
  /** The same as Hippo's CPU backend runs now (a step holds two copies of state and KV cache). */
  maxBatchAsRun: number;
}

export interface CheckRow {
  model: string;
  test: string;
  composedMs: number;
  measuredMs: number;
  /** (composed − measured) / measured. */
  error: number;
}

export interface BenchResults {
  schema: "hippo-bench-1";
  date: string;
  seconds: number;
  machine: { cpu: string; cores: number; memoryBytes: number; platform: string; node: string; loadAverage: { start: number[]; end: number[] } };
  backend: { name: string; timer: string; threads: string };
  options: BenchOptions;
  ceilings: Ceilings;
  models: ModelInfo[];
  prefill: PrefillPoint[];
  decode: DecodePoint[];
  activations: { model: string; length: number; peakBytes: number; bytesPerToken: number }[];
  memory: MemoryRow[];
  budget: { bytes: number; rows: BudgetRow[]; longestPrompt: { model: string; tokens: number }[] };
  roofline: RooflineRow[];
  check: CheckRow[];
  findings: string[];
  notes: string[];
}

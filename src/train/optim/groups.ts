import { check } from "../../errors.js";
import { checkParam, type Param, type ParamGroup } from "./params.js";

/**
 * How the default grouping treats a parameter:
 * - "decay": weight decay at the base learning rate (matrices: in/out/x/dt projections, attention, MLP,
 *   conv1d weights, an untied lm_head, and every parameter no rule below names);
 * - "no_decay": no weight decay (biases, norm weights, embeddings);
 * - "ssm": Mamba-family SSM parameters, no weight decay, learning rate `ssmLr` (default: the base rate);
 * - "ssm_kernel": H3/S4D kernel parameters, no weight decay, learning rate `kernelLr` (default min(1e-3, lr)).
 */
export type ParamRole = "decay" | "no_decay" | "ssm" | "ssm_kernel";

/**
 * The role of parameter `name`, and why. `siblings` is every parameter name of the model (a mixer's D
 * counts as an SSM parameter only beside an A_log, i.e. in a Mamba mixer).
 *
 * Sources:
 * - Mamba (state-spaces/mamba, mamba_simple.py / mamba2.py): A_log, D and (Mamba-2) dt_bias carry
 *   `_no_weight_decay = True`; Mamba-1's dt_proj.bias is a bias. The recipe (Mamba paper App. E.2, the
 *   GPT-3 recipe of flash-attention's training scripts) puts no weight decay on biases and norms, and
 *   flash-attention's group_parameters_for_optimizer (training/src/optim/param_grouping.py) also
 *   excludes nn.Embedding weights. mamba_ssm gives these parameters no separate learning rate, so the
 *   "ssm" group's rate defaults to the base rate (`ssmLr` sets one).
 * - H3 / S4D (HazyResearch/safari): SSKernelDiag registers log_dt, B, inv_A_real and A_imag
 *   (s4d.py's S4DKernel: log_dt, log_w_real, w_imag; the shift kernel: B) with `_optim`
 *   {lr: min(0.001, optimizer.lr) (configs/model/layer/h3.yaml, s4d.yaml), weight_decay: 0}; the
 *   kernel's C and the layer's D / ssm_k_D are ordinary parameters (decayed, base rate).
 */
export function paramRole(name: string, siblings: ReadonlySet<string> = new Set()): { role: ParamRole; reason: string } {
  const parts = name.split(".");
  const leaf = parts[parts.length - 1];
  const owner = parts.length >= 2 ? parts[parts.length - 2] : "";
  const prefix = parts.slice(0, -1).join(".");

  if (/(^|\.)kernel\.(kernel\.)?(log_dt|inv_A_real|A_imag|B|log_w_real|w_imag)$/.test(name)) {
    return { role: "ssm_kernel", reason: "H3/S4D kernel parameter (safari _optim: lr min(1e-3, lr), weight_decay 0)" };
  }
  if (leaf === "A_log" || leaf === "dt_bias") return { role: "ssm", reason: `Mamba ${leaf} (_no_weight_decay)` };
  if (leaf === "bias" && owner === "dt_proj") return { role: "ssm", reason: "Mamba dt_proj.bias (the Δ bias)" };
  if (leaf === "D" && siblings.has(prefix ? `${prefix}.A_log` : "A_log")) {
    return { role: "ssm", reason: "Mamba D (_no_weight_decay)" };
  }
  if (leaf === "bias") return { role: "no_decay", reason: "bias" };
  if (/norm/i.test(owner) || /^ln(_|\d|$)/.test(owner)) return { role: "no_decay", reason: "norm weight" };
  if (parts.slice(0, -1).some((s) => /embed|^wte$|^wpe$/.test(s))) return { role: "no_decay", reason: "embedding" };
  return { role: "decay", reason: "weight" };
}

export interface GroupingOptions {
  /** Base learning rate. */
  lr: number;
  /** Weight decay of the "decay" group (0.1: Mamba paper App. E.2, safari's synthetics and Pile configs). */
  weightDecay?: number;
  /** Learning rate of the Mamba "ssm" group (default: lr, as mamba_ssm). */
  ssmLr?: number;
  /** Learning rate of the H3/S4D "ssm_kernel" group (default: min(1e-3, lr), as safari). */
  kernelLr?: number;
  /** Replaces paramRole (e.g. to decay H3's D too, or freeze nothing differently). */
  roleOf?: (name: string, siblings: ReadonlySet<string>) => ParamRole;
}

/**
 * Splits `params` into the default groups (in this order, empty ones left out): decay, no_decay, ssm,
 * ssm_kernel. Parameters keep their given order within a group.
 */
export function defaultParamGroups(params: readonly Param[], options: GroupingOptions): ParamGroup[] {
  const { lr, weightDecay = 0.1 } = options;
  check(Number.isFinite(lr) && lr >= 0, `learning rate must be a finite number >= 0, got ${lr}`);
  check(Number.isFinite(weightDecay) && weightDecay >= 0, `weight decay must be a finite number >= 0, got ${weightDecay}`);
  const names = new Set<string>();
  for (const p of params) {
    checkParam(p);
    check(!names.has(p.name), `parameter '${p.name}' is listed twice`);
    names.add(p.name);
  }
  const roleOf = options.roleOf ?? ((n: string, s: ReadonlySet<string>) => paramRole(n, s).role);
  const groups: ParamGroup[] = [
    { name: "decay", params: [], lr, weightDecay },
    { name: "no_decay", params: [], lr, weightDecay: 0 },
    { name: "ssm", params: [], lr: options.ssmLr ?? lr, weightDecay: 0 },
    { name: "ssm_kernel", params: [], lr: options.kernelLr ?? Math.min(1e-3, lr), weightDecay: 0 },
  ];
  for (const p of params) {
    const role = roleOf(p.name, names);
    const group = groups.find((g) => g.name === role);
    check(group, `parameter '${p.name}': unknown role '${role}' (expected decay, no_decay, ssm or ssm_kernel)`);
    group.params.push(p);
  }
  return groups.filter((g) => g.params.length > 0);
}

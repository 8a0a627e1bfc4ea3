"""Checks that Hugging Face transformers loads run directories written by `hippo train` (Mamba, Mamba-2)
and computes the same logits as Hippo.

Each run directory must hold `hippo-logits.safetensors` (`hippo forward --output`, with the same
`input.safetensors`): transformers' AutoModelForCausalLM loads the directory as it is, runs input_ids
in float32 (TF32 off), and its logits are compared with Hippo's. Exits 1 on a failed load or a
relative L2 error above 1e-4.

    python3 scripts/hf_load_check.py --input input.safetensors RUN_DIR [RUN_DIR ...]
"""
import argparse
import sys

import torch
import transformers
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--input", required=True)
    p.add_argument("runs", nargs="+")
    a = p.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() else "cpu"
    ids = load_file(a.input)["input_ids"].to(torch.long).to(device)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, device {device}")
    failed = 0
    for run in a.runs:
        model = AutoModelForCausalLM.from_pretrained(run, dtype=torch.float32).to(device).eval()
        with torch.no_grad():
            ours = model(input_ids=ids).logits.float().cpu()
        hippo = load_file(f"{run}/hippo-logits.safetensors")["logits"].float()
        err = float((ours - hippo).norm() / hippo.norm())
        same_argmax = float((ours.argmax(-1) == hippo.argmax(-1)).float().mean())
        ok = err < 1e-4
        failed += not ok
        print(f"{run}: {type(model).__name__}, logits {tuple(ours.shape)}, relative L2 vs Hippo {err:.2e}, "
              f"argmax agreement {100 * same_argmax:.1f}% -> {'ok' if ok else 'FAIL'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

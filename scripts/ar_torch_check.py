"""Learning-dynamics cross-check for associative recall, in PyTorch (not a fixture, not Hippo).

Question it answers: when Hippo's 2-layer attention model sits near 27-35% exact match on associative
recall after a few thousand updates, is that Hippo (a bug) or the recipe (too few updates)? This trains
the same model in PyTorch - Hippo's `--arch attention` (pre-RMSNorm blocks: RoPE attention, 4 heads of
16; GELU MLP 4x; tied embeddings, std 0.02 init; PyTorch-default linear init, which is Hippo's) - on
the same task (safari's generate_assoc_recall: vocabulary 20, 20 key-value pairs, seq 42, 500 held-out
examples scored on the answer) with the same optimiser (AdamW 0.9/0.98, wd 0.1 on matrices only, linear
warmup, cosine to 10%, clip 1, batch 32) and prints held-out exact match along the way. The examples are
drawn with numpy, so they differ from Hippo's (same distribution).

    python3 scripts/ar_torch_check.py --steps 10000 --lr 3e-3 --warmup 200 --targets all --pool 0

--arch mamba / mamba2 trains Hugging Face's MambaForCausalLM / Mamba2ForCausalLM of Hippo's `--arch
mamba|mamba2` shapes (d_model 64, 2 layers, d_state 16, expand 2, conv 4; Mamba-2 heads of 16, 1 group,
chunk 64; tied embeddings; transformers' own init) with Hippo's parameter groups (no weight decay on
A_log, D, dt biases, biases, norms, embeddings). `--save FILE` checkpoints every eval and resumes from
FILE when it exists, so a schedule can span several time-limited calls.
"""
import argparse
import json
import math
import time

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

V, PAIRS, NK = 20, 20, 9  # vocabulary (18 ordinary + "=>" + "."), pairs, keys (values are the other 9)
ARROW = 18


def example(rng):
    kv = rng.integers(NK, 2 * NK, size=NK)  # one map per example: key -> value, i.i.d. uniform
    keys = rng.integers(0, NK, size=PAIRS)
    seq = np.empty(2 * PAIRS + 3, dtype=np.int64)
    seq[0:2 * PAIRS:2] = keys
    seq[1:2 * PAIRS:2] = kv[keys]
    q = rng.integers(0, NK)
    if q not in keys:  # safari, allow_dot False: redraw among the keys present
        q = rng.choice(np.unique(keys))
    seq[-3:] = [ARROW, q, kv[q]]
    return seq


def distinct(rng, n, exclude):
    rows, seen = [], set()
    while len(rows) < n:
        s = example(rng)
        t = s.tobytes()
        if t in seen or t in exclude:
            continue
        seen.add(t)
        rows.append(s)
    return np.stack(rows), seen


def rope(x):  # x [B, H, L, D], rotate-half form, base 10000
    B, H, L, D = x.shape
    inv = 1.0 / (10000 ** (torch.arange(0, D, 2, device=x.device, dtype=torch.float32) / D))
    ang = torch.arange(L, device=x.device, dtype=torch.float32)[:, None] * inv[None, :]
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)
    x1, x2 = x[..., : D // 2], x[..., D // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.weight


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.h = heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=False) for _ in range(4))

    def forward(self, x):
        B, L, D = x.shape
        split = lambda t: t.view(B, L, self.h, D // self.h).transpose(1, 2)
        q, k, v = rope(split(self.q(x))), rope(split(self.k(x))), split(self.v(x))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o(y.transpose(1, 2).reshape(B, L, D))


class MLP(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.up, self.down = nn.Linear(d, 4 * d, bias=False), nn.Linear(4 * d, d, bias=False)

    def forward(self, x):
        return self.down(F.gelu(self.up(x)))


class Model(nn.Module):
    def __init__(self, d=64, heads=4, blocks=2):
        super().__init__()
        self.emb = nn.Embedding(V, d)
        nn.init.normal_(self.emb.weight, std=0.02)
        self.layers = nn.ModuleList([m for _ in range(blocks) for m in (Attention(d, heads), MLP(d))])
        self.norms = nn.ModuleList([RMSNorm(d) for _ in self.layers])
        self.norm_f = RMSNorm(d)

    def forward(self, ids):
        x = self.emb(ids)
        for norm, layer in zip(self.norms, self.layers):
            x = x + layer(norm(x))
        return self.norm_f(x) @ self.emb.weight.T


def hf_mamba(arch, d=64, blocks=2):
    import transformers as tf
    common = dict(vocab_size=V, hidden_size=d, num_hidden_layers=blocks, state_size=16, expand=2, conv_kernel=4,
                  tie_word_embeddings=True, pad_token_id=0, bos_token_id=0, eos_token_id=0)
    if arch == "mamba":
        return tf.MambaForCausalLM(tf.MambaConfig(**common))
    head_dim = min(64, max(8, 2 * d // 8))
    return tf.Mamba2ForCausalLM(tf.Mamba2Config(**common, head_dim=head_dim, num_heads=2 * d // head_dim, n_groups=1, chunk_size=64))


def decays(name, p):  # Hippo's paramRole: matrices decay; SSM parameters, biases, norms, embeddings do not
    leaf = name.split(".")[-1]
    if leaf in ("A_log", "D", "dt_bias", "bias") or "norm" in name or "emb" in name:
        return False
    return p.dim() >= 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--targets", choices=["all", "answer"], default="all")
    ap.add_argument("--pool", type=int, default=5000, help="fixed training examples; 0 = fresh every batch")
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--minutes", type=float, default=1e9)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1, help="cosine floor (1: constant after warmup)")
    ap.add_argument("--arch", choices=["attention", "mamba", "mamba2"], default="attention")
    ap.add_argument("--save", default=None, help="checkpoint file: written at every eval, resumed from if present")
    a = ap.parse_args()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    test, test_set = distinct(np.random.default_rng(1000003), 500, set())
    pool = distinct(rng, a.pool, test_set)[0] if a.pool > 0 else None
    test = torch.tensor(test, device=dev)
    if a.arch == "attention":
        model = Model().to(dev)
        forward = model
    else:
        model = hf_mamba(a.arch).to(dev)
        forward = lambda ids: model(input_ids=ids).logits
    named = list(model.named_parameters())  # tied weights appear once
    decay = [p for n, p in named if decays(n, p)] if a.arch != "attention" else \
        [p for p in model.parameters() if p.dim() >= 2 and p is not model.emb.weight]
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in ids]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.98))

    def lr_at(s):
        if s < a.warmup:
            return (s + 1) / a.warmup
        p = (s - a.warmup) / max(1, a.steps - a.warmup)
        return a.min_lr_ratio + (1 - a.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    started, log, first, before = time.time(), [], 1, 0.0
    if a.save and os.path.exists(a.save):
        ck = torch.load(a.save, weights_only=False)
        model.load_state_dict(ck["model"]); opt.load_state_dict(ck["opt"]); sched.load_state_dict(ck["sched"])
        rng.bit_generator.state = ck["rng"]; torch.set_rng_state(ck["torch_rng"])
        first, log, before = ck["step"] + 1, ck["log"], ck["seconds"]
        print(json.dumps({"resumed": ck["step"]}), flush=True)
    started -= before
    for step in range(first, a.steps + 1):
        if pool is not None:
            batch = pool[rng.integers(0, len(pool), size=32)]
        else:
            batch = np.stack([example(rng) for _ in range(32)])  # (test overlap is negligible: ~9^21 sequences)
        b = torch.tensor(batch, device=dev)
        x, y = b[:, :-1], b[:, 1:].clone()
        if a.targets == "answer":
            y[:, :-1] = -100
        loss = F.cross_entropy(forward(x).reshape(-1, V), y.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % a.eval_every == 0 or step == a.steps:
            with torch.no_grad():
                pred = forward(test[:, :-1])[:, -1].argmax(-1)
                em = (pred == test[:, -1]).float().mean().item()
            rec = {"step": step, "loss": round(loss.item(), 4), "exactMatch": em, "seconds": round(time.time() - started, 1)}
            log.append(rec)
            print(json.dumps(rec), flush=True)
            if a.save:
                ck = {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "rng": rng.bit_generator.state,
                      "torch_rng": torch.get_rng_state(), "step": step, "log": log, "seconds": time.time() - started}
                torch.save(ck, a.save + ".tmp")
                os.replace(a.save + ".tmp", a.save)
        if time.time() - started > a.minutes * 60:
            break
    print(json.dumps({"settings": vars(a), "device": dev, "final": log[-1] if log else None}), flush=True)


if __name__ == "__main__":
    main()

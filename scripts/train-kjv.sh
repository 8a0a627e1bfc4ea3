#!/usr/bin/env bash
# The command that trained models/hippo-kjv (about an hour on one core of a busy 2-core machine, 2.05M
# bytes seen: 1000 updates × 16 windows × 128 bytes; held-out loss 1.31 nats/byte). Copy config.json,
# model.safetensors and tokenizer.json from the run directory into models/hippo-kjv.
set -euo pipefail
npx hippo train --text data/kjv.txt.gz --arch mamba --d-model 128 --layers 4 --batch-size 16 --seq-len 128 \
  --steps 1000 --lr 3e-3 --warmup 50 --eval-every 100 --checkpoint-every 50 --log-every 10 --seed 1 --out "${1:-runs/kjv}"

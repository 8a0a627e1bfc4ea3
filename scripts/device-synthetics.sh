#!/bin/bash
# One call on the GPU machine's CPU cores (16): the synthetic runs in parallel, one process per core, plus
# bench/train-speed.js on one core and the PyTorch learning-dynamics cross-check (scripts/ar_torch_check.py)
# on the GPU. Expects the bundles from `esbuild` (see docs/synthetics/README.md) in $KIT and node in
# .devkit/node.xz; writes everything under $OUT/r and packs it into $OUT/results.tgz.
#   KIT=.devkit/train MINUTES=8.3 bash $KIT/device-synthetics.sh
set -u
KIT=${KIT:-.devkit/train}
MINUTES=${MINUTES:-8.3}
R=$OUT/r
mkdir -p "$R"
xz -dc .devkit/node.xz > /tmp/node && chmod +x /tmp/node
NODE=/tmp/node
{ nproc; lscpu | grep -i "model name"; nvidia-smi -L; $NODE --version; } > "$R/machine.txt" 2>&1
GPU_MIN=$(python3 -c "print(round(($MINUTES - 1) / 2, 2))")
export OMP_NUM_THREADS=1
( python3 "$KIT/ar_torch_check.py" --steps 3000 --lr 3e-3 --warmup 200 --pool 0 --eval-every 250 > "$R/torch-fresh-3e3-cosine3k.log" 2>&1
  python3 "$KIT/ar_torch_check.py" --steps 100000 --lr 3e-3 --warmup 200 --pool 0 --min-lr-ratio 1 --eval-every 1000 --minutes "$GPU_MIN" > "$R/torch-fresh-3e3-const.log" 2>&1
  python3 "$KIT/ar_torch_check.py" --steps 62800 --lr 5e-4 --warmup 6280 --pool 5000 --eval-every 2000 --minutes "$GPU_MIN" > "$R/torch-paper-5e-4.log" 2>&1 ) &
( $NODE "$KIT/train-speed.mjs" --steps 12 --warmup 2 --out "$R/train-speed.json" > "$R/train-speed.log" 2>&1 ) &
ar() {  # recipe name, batch, lr, arch
  ( $NODE "$KIT/reproduce-synthetics.mjs" --out "$R/$1" --checkpoints /tmp/ckpt-$1-$4 --only "associative-recall/$4" --steps 100000 \
      --batch-size "$2" --lr "$3" --warmup 200 --min-lr-ratio 1 --eval-every 250 --task-option numTrainExamples=0 --minutes "$MINUTES" \
      > "$R/log-$1-$4.txt" 2>&1 ) &
}
for arch in s4d h3 attention mamba mamba2; do ar ar-b32-lr3e-3 32 3e-3 $arch; ar ar-b16-lr2e-3 16 2e-3 $arch; done
pb() {  # recipe name, numberLength, pattern
  ( $NODE "$KIT/reproduce-synthetics.mjs" --out "$R/$1" --checkpoints /tmp/ckpt-$1-$3 --only "phonebook/$3" --steps 200000 \
      --batch-size 32 --lr 3e-3 --warmup 100 --min-lr-ratio 1 --eval-every 100 --task-option numberLength=$2 --minutes "$MINUTES" \
      > "$R/log-$1-${3//\*/A}.txt" 2>&1 ) &
}
for p in "M-M-" "M-*-"; do pb pb-digits10 10 "$p"; pb pb-digits4 4 "$p"; done
wait
tar czf "$OUT/results.tgz" -C "$OUT" r
ls -la "$OUT"

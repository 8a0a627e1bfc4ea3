#!/bin/bash
# One time-limited call of a longer campaign on the GPU machine's 16 CPU cores: associative recall with
# the paper's recipe on a shortened schedule (every run reaches the end of its cosine), Mamba/Mamba-2 at
# other learning rates, the phonebook gap (pure Mamba-2 vs one attention layer), and HF transformers'
# Mamba / Mamba-2 on the GPU with the same recipe (scripts/ar_torch_check.py). Every run resumes from the
# state the previous call returned, so the campaign is a sequence of identical calls:
#   bash ../shared/device/pack.sh scripts/reproduce-synthetics.ts     # here, once
#   (unpack the previous call's $OUT/state-*.tgz into .synth/, carried with .devkit)
#   source .devkit/setup.sh && MINUTES=8.8 bash scripts/device-paper-recipe.sh
# Writes the state back as $OUT/state-{a,b,c,d}.tgz (each under the 16 MiB a returned file may have).
set -u
MINUTES=${MINUTES:-8.8}
STATE=${STATE:-.synth}
R=/tmp/r
mkdir -p "$R"
# A state made by another bundle (other code or schedules) is not continued: every run starts again.
KIT_ID=$(cat .devkit/reproduce-synthetics.mjs "$0" | sha1sum | cut -c1-12)
if [ -d "$STATE/r" ] && [ "$(cat "$STATE/r/kit-id" 2>/dev/null)" = "$KIT_ID" ]; then cp -a "$STATE/r/." "$R/"
elif [ -d "$STATE/r" ]; then echo "state from another bundle: every run starts again" | tee -a "$R/machine.txt"
fi
echo "$KIT_ID" > "$R/kit-id"
{ date -u; nproc; lscpu | grep -i "model name"; nvidia-smi -L; node --version; } >> "$R/machine.txt" 2>&1
export OMP_NUM_THREADS=1
run() {  # name, task/arch, steps (before the task's scale), lr, warmup, extra flags...
  local name=$1 only=$2 steps=$3 lr=$4 warmup=$5; shift 5
  ( node .devkit/reproduce-synthetics.mjs --out "$R/$name" --checkpoints "$R/$name/ckpt" --only "$only" --steps "$steps" \
      --lr "$lr" --warmup "$warmup" --checkpoint-every 500 --minutes "$MINUTES" --resume "$@" \
      >> "$R/$name/console.txt" 2>&1 ) &
}
mkdir -p "$R"/{ar-s4d,ar-attn,ar-mamba,ar-mamba2,ar-mamba-1e-3,ar-mamba2-1e-3,ar-mamba-2e-4,pb8-5e-4,pb8-1e-3,pb16-1e-3}
# Associative recall: safari's recipe (lr 5e-4, fixed 5,000-example pool, loss on every next token), schedule 10,000.
run ar-s4d associative-recall/s4d 10000 5e-4 1000 --eval-every 500
run ar-attn associative-recall/attention 10000 5e-4 1000 --eval-every 500
run ar-mamba associative-recall/mamba 10000 5e-4 1000 --eval-every 500
run ar-mamba2 associative-recall/mamba2 10000 5e-4 1000 --eval-every 500
run ar-mamba-1e-3 associative-recall/mamba 10000 1e-3 1000 --eval-every 500
run ar-mamba2-1e-3 associative-recall/mamba2 10000 1e-3 1000 --eval-every 500
run ar-mamba-2e-4 associative-recall/mamba 10000 2e-4 1000 --eval-every 500
# Phonebook (answer targets, fresh examples, 4-digit numbers); the runs' step scale is 0.5: 10,000 and 6,000 updates.
for p in "M-M-" "M-*-"; do
  run pb8-5e-4 "phonebook/$p" 20000 5e-4 1000 --eval-every 250 --task-option numberLength=4
  run pb8-1e-3 "phonebook/$p" 20000 1e-3 1000 --eval-every 250 --task-option numberLength=4
  run pb16-1e-3 "phonebook/$p" 12000 1e-3 600 --eval-every 250 --task-option numberLength=4 --task-option numEntries=16
done
# The same recipe in PyTorch (HF transformers' models, torch paths) on the GPU.
for a in mamba mamba2; do
  ( python3 scripts/ar_torch_check.py --arch $a --steps 10000 --lr 5e-4 --warmup 1000 --pool 5000 --eval-every 500 \
      --minutes "$MINUTES" --save "$R/torch-$a.pt" >> "$R/torch-$a.log" 2>&1 ) &
done
wait
date -u >> "$R/machine.txt"
cd /tmp
tar czf "$OUT/state-a.tgz" r/kit-id r/machine.txt r/torch-* r/ar-s4d r/ar-attn
tar czf "$OUT/state-b.tgz" r/ar-mamba r/ar-mamba2 r/ar-mamba-1e-3
tar czf "$OUT/state-c.tgz" r/ar-mamba2-1e-3 r/ar-mamba-2e-4 r/pb16-1e-3
tar czf "$OUT/state-d.tgz" r/pb8-5e-4 r/pb8-1e-3
ls -la "$OUT"
tail -n 3 r/*/console.txt r/torch-*.log

#!/bin/bash
# The synthetics campaign on the GPU machine's 16 CPU cores, one run per core, within one lease of the
# machine (30 minutes held): `start` launches every run in its own session (it outlives the call),
# `status` sleeps and prints progress (a call that keeps the machine held), `finish` waits for the runs
# (each stops itself after $MINUTES) and packs records and logs into $OUT/results.tgz.
#   bash ../shared/device/pack.sh scripts/reproduce-synthetics.ts                      # here, once
#   source .devkit/setup.sh && MINUTES=26 bash scripts/device-paper-recipe.sh start    # first call
#   bash scripts/device-paper-recipe.sh status 570                                     # calls in between
#   bash scripts/device-paper-recipe.sh finish                                         # last call
# Runs: associative recall with safari's recipe (below; fixed 5,000-example pool, loss on every next
# token) on shortened schedules, and the phonebook (answer targets, fresh examples): pure Mamba-2 (M-M-)
# vs one attention layer (M-*-). `--resume` makes a second lease continue them. The first lease's list
# (8,000-update AR at lr 5e-4 / 1e-3, d_model 64, and 5,000-update phonebooks) is in this file's history.
set -u
R=/tmp/r
cmd=${1:-start}
case "$cmd" in
start)
  MINUTES=${MINUTES:-26}
  mkdir -p "$R"
  { date -u; nproc; lscpu | grep -i "model name"; nvidia-smi -L; node --version; } >> "$R/machine.txt" 2>&1
  run() {  # name, task/arch, steps (before the task's step scale, 0.5 for the phonebook), lr, warmup, extra flags...
    local name=$1 only=$2 steps=$3 lr=$4 warmup=$5; shift 5
    mkdir -p "$R/$name"
    setsid nohup node .devkit/reproduce-synthetics.mjs --out "$R/$name" --checkpoints "$R/$name/ckpt" --only "$only" \
      --steps "$steps" --lr "$lr" --warmup "$warmup" --checkpoint-every 500 --minutes "$MINUTES" --resume "$@" \
      >> "$R/$name/console-${only//[\/\*]/_}.txt" 2>&1 < /dev/null &
    echo $! >> "$R/pids"
  }
  # safari's AR recipe (configs/experiment/synthetics/associative_recall): d_model 32, H3/S4D d_state 64,
  # lr 5e-4, wd 0.1, embedding dropout 0.1, linear warmup (10%) then linear decay to 0 — here over 10,000 updates.
  SAFARI=(--d-model 32 --decay linear --min-lr-ratio 0 --embed-dropout 0.1 --eval-every 250)
  for a in attention mamba mamba2; do run ar-safari-10k "associative-recall/$a" 10000 5e-4 1000 "${SAFARI[@]}" --d-state 16; done
  for a in h3 s4d; do run ar-safari-10k "associative-recall/$a" 10000 5e-4 1000 "${SAFARI[@]}" --d-state 64; done
  for a in mamba mamba2; do run ar-safari-10k-1e-3 "associative-recall/$a" 10000 1e-3 1000 "${SAFARI[@]}" --d-state 16; done
  # The recipe at which Mamba recalled in the first lease (d_model 64, lr 1e-3, cosine, no dropout, 8,000 updates).
  for a in attention h3 s4d; do run ar-1e-3 "associative-recall/$a" 8000 1e-3 800 --eval-every 250; done
  for p in "M-M-" "M-*-"; do
    run pb8-d4-1e-3-10k "phonebook/$p" 20000 1e-3 500 --eval-every 250 --task-option numberLength=4
    run pb8-d4-5e-4-10k "phonebook/$p" 20000 5e-4 500 --eval-every 250 --task-option numberLength=4
    run pb16-d2-1e-3 "phonebook/$p" 12000 1e-3 300 --eval-every 250 --task-option numberLength=2 --task-option numEntries=16
  done
  sleep 20
  tail -n 2 "$R"/*/console-*.txt
  ;;
status)
  sleep "${2:-570}"
  date -u
  tail -q -n 1 "$R"/*/console-*.txt
  ;;
finish)
  while read -r pid; do while kill -0 "$pid" 2>/dev/null; do sleep 2; done; done < "$R/pids"
  date -u >> "$R/machine.txt"
  # Records, logs and console output; the checkpoints stay behind (a second lease would need them: see --resume).
  (cd /tmp && tar czf "$OUT/results.tgz" --exclude=ckpt r)
  ls -la "$OUT"
  tail -q -n 1 "$R"/*/console-*.txt
  ;;
esac

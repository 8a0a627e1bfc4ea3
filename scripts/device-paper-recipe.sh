#!/bin/bash
# The synthetics campaign on the GPU machine's 16 CPU cores, one run per core, within one lease of the
# machine (30 minutes held): `start` launches every run in its own session (it outlives the call),
# `status` sleeps and prints progress (a call that keeps the machine held), `finish` waits for the runs
# (each stops itself after $MINUTES) and packs records and logs into $OUT/results.tgz.
#   bash ../shared/device/pack.sh scripts/reproduce-synthetics.ts                      # here, once
#   source .devkit/setup.sh && MINUTES=26 bash scripts/device-paper-recipe.sh start    # first call
#   bash scripts/device-paper-recipe.sh status 570                                     # calls in between
#   bash scripts/device-paper-recipe.sh finish                                         # last call
# Runs: associative recall with the paper's recipe (safari: lr 5e-4, fixed 5,000-example pool, loss on
# every next token) on a schedule of 8,000 updates, and the phonebook (answer targets, fresh examples):
# pure Mamba-2 (M-M-) vs one attention layer (M-*-). `--resume` makes a second lease continue them.
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
  for a in attention mamba mamba2 h3 s4d; do run ar-5e-4 "associative-recall/$a" 8000 5e-4 800 --eval-every 250; done
  for a in mamba mamba2; do run ar-1e-3 "associative-recall/$a" 8000 1e-3 800 --eval-every 250; done
  for p in "M-M-" "M-*-"; do
    run pb8-d4-1e-3 "phonebook/$p" 10000 1e-3 250 --eval-every 250 --task-option numberLength=4
    run pb8-d4-5e-4 "phonebook/$p" 10000 5e-4 250 --eval-every 250 --task-option numberLength=4
    run pb8-d2-1e-3 "phonebook/$p" 10000 1e-3 250 --eval-every 250 --task-option numberLength=2
    run pb16-d4-1e-3 "phonebook/$p" 6000 1e-3 150 --eval-every 250 --task-option numberLength=4 --task-option numEntries=16
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

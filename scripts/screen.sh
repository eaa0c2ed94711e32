#!/usr/bin/env bash
# Issue 12's screening: train each config on one thread into RUNS/<config name>, then evaluate
# 200 networks (seed 0) on the validation split with both batch-norm sampling modes. Run two
# of these side by side at most (2 cores); summarise with scripts/screen_table.py RUNS.
# Usage: bash scripts/screen.sh RUNS CONFIG [CONFIG ...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup_env.sh > /dev/null
RUNS=$1; shift
export OMP_NUM_THREADS=1
for config in "$@"; do
  name=$(basename "$config" .yaml)
  run="$RUNS/$name"
  start=$(date +%s)
  .venv/bin/weightgen train --config "$config" --out "$run" --no-progress > "$RUNS/$name.log" 2>&1
  echo "$(( $(date +%s) - start ))" > "$run/train_wall_s"
  for mode in running batch; do
    [ -f "$run/validation_bn_$mode.json" ] || .venv/bin/weightgen evaluate "$run" -n 200 --seed 0 \
      --split validation --batch-norm "$mode" --json "$run/validation_bn_$mode.json" >> "$RUNS/$name.log"
  done
done

#!/usr/bin/env bash
# The GPU checks of BENCHMARKS.md and RESULTS.md as one prepared script, for a session that is
# lent a GPU machine (the device tool runs it in a copy of the working tree; results go to $OUT).
#   bash benchmarks/gpu_checks.sh            # ~5 min on one H100
# The MNIST files must be findable there: ../shared/data, $WEIGHTGEN_DATA, or (for the device
# tool, which copies only the repository) a git-ignored folder carried along, e.g. data/mnist
# with WEIGHTGEN_DATA=data.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
source scripts/setup_env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
.venv/bin/weightgen bench --device cuda --steps 50 --json | tee "$OUT/bench_cuda.json"
.venv/bin/python benchmarks/scaling.py --device cuda --steps 20 --json "$OUT/scaling_cuda.json" \
    | tee "$OUT/scaling_cuda.md"
# the paper's lambda = 1e3 run, timed, then its 20 x 200 protocol in float32
start=$(date +%s)
.venv/bin/weightgen train --config configs/paper_lambda1e3.yaml --device cuda \
    --out "$OUT/paper_lambda1e3" --no-progress
echo "train wall seconds: $(( $(date +%s) - start ))" | tee "$OUT/train_wall.txt"
.venv/bin/weightgen evaluate "$OUT/paper_lambda1e3" -n 4000 --ensemble-size 200 --device cuda \
    --json "$OUT/paper_lambda1e3_20x200.json"

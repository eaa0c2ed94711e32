#!/usr/bin/env bash
# The GPU checks of BENCHMARKS.md and RESULTS.md as one prepared script, for a session that is
# lent a GPU machine (the device tool runs it in a copy of the working tree; results go to $OUT).
#   bash benchmarks/gpu_checks.sh   # not run yet: no session of this task was lent a GPU
# The MNIST files must be findable there: ../shared/data, $WEIGHTGEN_DATA, or (for the device
# tool, which copies only the repository) a git-ignored folder carried along, e.g. data/mnist
# with WEIGHTGEN_DATA=data.
# The device machines cannot download: the script uses their own python3 (CUDA PyTorch, numpy,
# safetensors, PyYAML, tqdm, matplotlib, scipy are there) with weightgen from src/, not .venv.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import torch, weightgen; print('weightgen', weightgen.__version__, 'torch', torch.__version__)"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
"$PY" -m weightgen bench --device cuda --steps 50 --json | tee "$OUT/bench_cuda.json"
"$PY" benchmarks/scaling.py --device cuda --steps 20 --json "$OUT/scaling_cuda.json" \
    | tee "$OUT/scaling_cuda.md"
# the paper's lambda = 1e3 run, timed, then its 20 x 200 protocol in float32
start=$(date +%s)
"$PY" -m weightgen train --config configs/paper_lambda1e3.yaml --device cuda \
    --out "$OUT/paper_lambda1e3" --no-progress
echo "train wall seconds: $(( $(date +%s) - start ))" | tee "$OUT/train_wall.txt"
"$PY" -m weightgen evaluate "$OUT/paper_lambda1e3" -n 4000 --ensemble-size 200 --device cuda \
    --json "$OUT/paper_lambda1e3_20x200.json"
# issue 27: time to a validation vote of 99 % against the paper config, two seeds
"$PY" benchmarks/speedrun.py configs/fast.yaml --seeds 8734 2 --target 0.99 --every 1000 \
    --reference configs/paper_lambda1e3.yaml --reference-seeds 8734 --device cuda \
    --json "$OUT/speedrun_cuda.json" \
    | tee "$OUT/speedrun_cuda.txt"
# issue 26: the Fashion-MNIST comparison's trainings (seed 8734; a second seed with --seed 2),
# each then measured with its ensemble-size curve against MNIST as the OOD set
for name in deep_ensemble paper_lambda1e3 mnfg hypergan fast_multi3 fast_multi3_function \
    fast_multi3_shuffled fast_multi3_shuffled002 fast_multi3_steps7000 fast_function7000; do
  "$PY" -m weightgen train --config "configs/fashion_mnist/$name.yaml" --device cuda \
      --out "$OUT/fm_$name" --no-progress --checkpoint-every 1000
  count=$([ "$name" = deep_ensemble ] && echo 10 || echo 200)  # a deep ensemble holds 10
  "$PY" -m weightgen evaluate "$OUT/fm_$name" --step best -n "$count" --curve --ood mnist \
      --split validation --device cuda --json "$OUT/fm_${name}_validation.json"
done
# issue 26 on MNIST: the three-generator runs and HyperGAN (Fashion-MNIST as the OOD set)
for name in fast_multi3 fast_multi3_function fast_multi3_shuffled fast_multi3_steps7000 \
    fast_multi3_shuffled_steps4600 hypergan; do
  "$PY" -m weightgen train --config "configs/$name.yaml" --device cuda --out "$OUT/mnist_$name" \
      --no-progress
  "$PY" -m weightgen evaluate "$OUT/mnist_$name" --step best -n 200 --curve \
      --ood fashion_mnist --split validation --device cuda --json "$OUT/mnist_${name}_validation.json"
done

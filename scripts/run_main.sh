#!/usr/bin/env bash
# Set up, train configs/fast.yaml (about 7 minutes on 2 CPU cores), sample 200 networks and
# report their test accuracy and ensembles. Usage: bash scripts/run_main.sh [CONFIG]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup_env.sh
CONFIG=${1:-configs/fast.yaml}
NAME=$(basename "$CONFIG" .yaml)
.venv/bin/weightgen train --config "$CONFIG" --out "runs/$NAME"
.venv/bin/weightgen sample "runs/$NAME" -n 200 -o "runs/$NAME/networks.safetensors"
.venv/bin/weightgen evaluate "runs/$NAME/networks.safetensors" --json "runs/$NAME/test_metrics.json"

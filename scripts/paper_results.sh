#!/usr/bin/env bash
# The numbers and figures of docs/results_history.md for a trained run: test accuracy of 200 generated
# networks, then the full report (20 x 200 ensembles, figures, calibration, OOD, diversity).
# Usage: bash scripts/paper_results.sh RUN_DIR [REPORT_DIR] [--compare OTHER ...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup_env.sh
RUN=${1:?usage: scripts/paper_results.sh RUN_DIR [REPORT_DIR] [--compare OTHER ...]}
OUT=${2:-$RUN/report}
shift $(( $# < 2 ? $# : 2 ))
.venv/bin/weightgen evaluate "$RUN" -n 200 --seed 0 --json "$RUN/test_200.json"
.venv/bin/weightgen report "$RUN" --out "$OUT" --no-progress "$@"

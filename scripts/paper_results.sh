#!/usr/bin/env bash
# The numbers of RESULTS.md for a trained run: test accuracy of 200 generated networks and the
# paper's 20 x 200 majority-vote protocol. Usage: bash scripts/paper_results.sh RUN_DIR
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup_env.sh
RUN=${1:?usage: scripts/paper_results.sh RUN_DIR}
.venv/bin/weightgen evaluate "$RUN" -n 200 --seed 0 --json "$RUN/test_200.json"
.venv/bin/weightgen evaluate "$RUN" -n 4000 --ensemble-size 200 --seed 1 --json "$RUN/test_20x200.json"

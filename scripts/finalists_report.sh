#!/usr/bin/env bash
# Issue 12's side-by-side report (docs/results_history.md, "What moves the ensemble"): the four generators
# pooled (canonical and paper config, seeds 8734 and 2, each at the checkpoint chosen on the
# validation split), the canonical generator and the paper config alone, MNFG and the deep
# ensemble, each reported once on the test set (the 20 x 200 protocol in float32, smaller
# figure sizes), then one --compare report of them all and its figures in docs/figures/ensembles.
# A step whose output exists is skipped, so the script continues after an interruption.
# Usage: bash scripts/finalists_report.sh RUNS   (RUNS holds canonical_s8734, canonical_s2,
#        paper_s8734, paper_s2, mnfg and deep_ensemble, trained with the configs in configs/)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup_env.sh > /dev/null
RUNS=${1:?usage: scripts/finalists_report.sh RUNS}
SIZES=(--networks 4000 --ensemble-size 200 --pca-samples 300 --filter-samples 16 --path-pairs 4
       --path-points 20 --diversity-networks 20 --adversarial-images 200
       --adversarial-ensemble 100 --no-progress)

pool="$RUNS/all_four.safetensors"
[ -f "$pool" ] || .venv/bin/weightgen sample "$RUNS/canonical_s8734" "$RUNS/canonical_s2" \
  "$RUNS/paper_s8734" "$RUNS/paper_s2" --step best -n 1000 --seed 0 -o "$pool"

# generators at the checkpoint chosen on validation; the baselines as trained (their last step)
reports=()
for source in "$pool" "$RUNS/canonical_s8734 --step best" "$RUNS/paper_s8734 --step best" \
              "$RUNS/mnfg" "$RUNS/deep_ensemble"; do
  read -r path step <<< "$source"
  name=$(basename "$path" .safetensors)
  [ -f "$RUNS/report_$name/metrics.json" ] || \
    .venv/bin/weightgen report "$path" $step --out "$RUNS/report_$name" "${SIZES[@]}"
  reports+=("$RUNS/report_$name")
done
.venv/bin/weightgen report "${reports[0]}" --compare "${reports[@]:1}" --out "$RUNS/report_finalists"
.venv/bin/python scripts/docs_figures.py "$RUNS/report_finalists" --out docs/figures/ensembles

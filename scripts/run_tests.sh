#!/usr/bin/env bash
# Set up and run the test suite in two worker processes of one thread each (about 8 minutes on
# 2 AVX2 cores). Extra arguments go to pytest (`-n 0` runs it in one process).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup_env.sh
exec .venv/bin/python -m pytest tests -n 2 --durations=10 "$@"

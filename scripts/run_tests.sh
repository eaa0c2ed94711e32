#!/usr/bin/env bash
# Set up and run the test suite (about 5 minutes on 2 CPU cores). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup_env.sh
exec .venv/bin/python -m pytest tests "$@"

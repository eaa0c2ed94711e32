#!/usr/bin/env bash
# Create .venv (if missing) with the pinned CPU PyTorch and weightgen installed in it.
# Sourced by the other scripts; safe to run again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0" 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c "import torch, weightgen; print('weightgen', weightgen.__version__, 'torch', torch.__version__)"
# Offline machines with the data beside the checkout (developers, CI): use it.
if [ -z "${WEIGHTGEN_DATA:-}" ] && [ -d ../shared/data/mnist ]; then
  export WEIGHTGEN_DATA="$(cd ../shared/data && pwd)"
fi

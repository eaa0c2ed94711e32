#!/usr/bin/env bash
# The checks beyond the tests (CI runs them after scripts/run_tests.sh): lint and format
# (ruff), types (mypy), the docs site (mkdocs --strict: a broken link or reference fails) and
# the wheel and sdist (built, installed in a fresh venv, used).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup_env.sh > /dev/null
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test,docs,dev]" 2>&1 |
  grep -v '^WARNING: Location' || true
echo "== ruff";   .venv/bin/ruff check src tests benchmarks scripts docs/hooks.py
                  .venv/bin/ruff format --check src tests benchmarks scripts docs/hooks.py
echo "== mypy";   .venv/bin/mypy
echo "== mkdocs"; NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir "$(mktemp -d)"
echo "== wheel";  bash scripts/check_wheel.sh

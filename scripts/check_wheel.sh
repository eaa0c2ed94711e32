#!/usr/bin/env bash
# Build the wheel and sdist, install each into a fresh venv, and sample from a shipped
# generator with a shipped config found by name, from outside the checkout (CI runs this).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/python -m build --no-isolation -o "$work/dist" . > "$work/build.log" 2>&1 ||
  { cat "$work/build.log"; exit 1; }
python3 -m venv "$work/venv"
pip=("$work/venv/bin/python" -m pip install -q --disable-pip-version-check)
"${pip[@]}" "torch==2.13.0" "setuptools>=77" 2>&1 | grep -v '^WARNING: Location' || true
for artifact in "$work"/dist/*.whl "$work"/dist/*.tar.gz; do
  "${pip[@]}" --no-build-isolation "$artifact" 2>&1 | grep -v '^WARNING: Location' || true
  (cd "$work" && venv/bin/weightgen sample pretrained:paper_lambda1e3 -n 5 -o nets.safetensors --force \
     && venv/bin/weightgen configs fashion_mnist/mnfg > /dev/null \
     && venv/bin/python -c "import weightgen; print(weightgen.__version__, len(weightgen.load('nets.safetensors').sample(5)))")
  echo "installed and sampled: $(basename "$artifact")"
  "$work/venv/bin/python" -m pip uninstall -q -y weightgen
done

#!/usr/bin/env bash
# Retrain both shipped demo models into dtwidgets/demo/ (CPU; about 15-25 minutes on 2 cores, most of it
# collection and the final 200-episode calibrations). Seeds are fixed, so the result is reproducible.
# Usage: scripts/train_demos.sh [cache_dir]   (the collected trajectories are cached there as demo_data.npz)
set -euo pipefail
cd "$(dirname "$0")/.."
# the project venv's interpreter (never a bare `python` from PATH); override with PYTHON=/path/to/python
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || { echo "expected a Python interpreter at $PY (create .venv or set PYTHON)" >&2; exit 2; }
CACHE="${1:-${TMPDIR:-/tmp}/dtwidgets-demo}"
mkdir -p "$CACHE"
for variant in post onehot; do
  "$PY" -m dtwidgets.training.demo --variant "$variant" --out "dtwidgets/demo/$variant.safetensors" \
    --data "$CACHE/demo_data.npz" --checkpoints "$CACHE/$variant-checkpoints" --eval-every 1000
done

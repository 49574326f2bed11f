#!/usr/bin/env bash
# Retrain both shipped demo models into dtwidgets/demo/ (CPU; about 15-25 minutes on 2 cores, most of it
# collection and the final 200-episode calibrations). Seeds are fixed, so the result is reproducible.
# Usage: scripts/train_demos.sh [cache_dir]   (the collected trajectories are cached there as demo_data.npz)
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${1:-${TMPDIR:-/tmp}/dtwidgets-demo}"
mkdir -p "$CACHE"
for variant in post onehot; do
  python -m dtwidgets.data.train_demo --variant "$variant" --out "dtwidgets/demo/$variant.safetensors" \
    --data "$CACHE/demo_data.npz" --checkpoints "$CACHE/$variant-checkpoints" --eval-every 1000
done

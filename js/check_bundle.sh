#!/usr/bin/env bash
# Rebuild the widget bundles from js/ and fail if dtwidgets/static differs from them.
# Usage (from anywhere): js/check_bundle.sh      (needs node >= 18 and npm; uses npm ci)
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error
node build.mjs --check

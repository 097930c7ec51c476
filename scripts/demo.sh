#!/usr/bin/env bash
# The main job on the built-in default: creates .venv if missing, then
# `gan2x demo`: fit one sample of synthetic:faces, write its asset bundle,
# build the Blender scene (.blend) and the comparison PNG.
# Arguments go to `gan2x demo` (default: --out out/demo).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
start=$(date +%s)
"$root/scripts/setup_env.sh"
echo "[setup] environment ready in $(( $(date +%s) - start )) s"
cd "$root"
if [ "$#" -eq 0 ]; then set -- --out "$root/out/demo"; fi
"$root/.venv/bin/gan2x" demo "$@"
echo "[demo] finished in $(( $(date +%s) - start )) s, set-up included"

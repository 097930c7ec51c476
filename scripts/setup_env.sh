#!/usr/bin/env bash
# Creates .venv (if missing) with everything the backend, the add-on tests and
# the demo need. Pinned for this machine: the CPU wheel of torch 2.13.0 and
# Blender 5.0.1 as a Python module (the newest for Python 3.11).
# GPU users: install the CUDA build of torch first (see README), then run this.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
stamp="$venv/.gan2x-env-1"
if [ ! -f "$stamp" ]; then
  echo "[setup] creating $venv (first run only; a few minutes)" >&2
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "torch==2.13.0" "bpy==5.0.1" "pytest>=7" >&2
  touch "$stamp"
fi
# The backend itself is re-installed (editable, no deps fetched twice) every run, cheap; with the
# optional extras the tests cover: test, and ray (gan2x batch, docs/scale.md).
"$venv/bin/pip" install --quiet --disable-pip-version-check -e "$root/backend[test,ray]" >&2

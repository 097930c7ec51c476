#!/usr/bin/env bash
# The whole test suite: creates .venv if missing, then runs pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k bundle).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup_env.sh"
cd "$root"
exec "$root/.venv/bin/python" -m pytest "$@"

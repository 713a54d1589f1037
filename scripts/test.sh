#!/usr/bin/env bash
# The test command of the README: idempotent set-up, then the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(bash scripts/setup_env.sh)"
export MPLBACKEND=Agg
exec "$venv/bin/python" -m pytest -q "$@"

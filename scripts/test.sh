#!/usr/bin/env bash
# The test command of the README: idempotent set-up, then the whole pytest suite.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="$(bash scripts/setup_env.sh)"
bash scripts/notebook_filter.sh
# One test process per core (pytest-xdist), each on one thread, as is every process they start.
export MPLBACKEND=Agg OMP_NUM_THREADS=1 PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$venv/bin/python" -m pytest -q -n auto "$@"

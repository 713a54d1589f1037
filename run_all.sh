#!/usr/bin/env bash
# Reproduce the results at one scale: ./run_all.sh [smoke|mini]
# Idempotent set-up first (a cached virtual environment keyed on pyproject.toml); then, for each dataset, every row of
# its FID table is trained (or resumed, if its run already finished) and evaluated: results/<dataset>/<scale>/table.json,
# figures/table_<dataset>_<scale>.md and sample grids in figures/. Paper scale runs on GPUs with the commands in README.md.
set -euo pipefail
cd "$(dirname "$0")"
scale="${1:-mini}"
case "$scale" in
  smoke|mini) ;;
  paper) echo "paper scale needs GPUs, EDM checkpoints and datasets: see README.md (torchrun commands)" >&2; exit 2 ;;
  *) echo "usage: ./run_all.sh [smoke|mini]" >&2; exit 2 ;;
esac
venv="$(bash scripts/setup_env.sh)"
export MPLBACKEND=Agg PATH="$venv/bin:$PATH" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
start=$(date +%s)
for dataset in digits digits-cond; do
  python -m paperlib table --dataset "$dataset" --scale "$scale"
done
echo "run_all.sh $scale finished in $(( $(date +%s) - start )) s"

#!/usr/bin/env bash
# Reproduce the results at one scale: ./run_all.sh [smoke|mini|paper]
# Idempotent set-up first (a cached virtual environment keyed on pyproject.toml), then every reproduction step.
set -euo pipefail
cd "$(dirname "$0")"
scale="${1:-mini}"
case "$scale" in smoke|mini|paper) ;; *) echo "usage: ./run_all.sh [smoke|mini|paper]" >&2; exit 2 ;; esac
venv="$(bash scripts/setup_env.sh)"
export MPLBACKEND=Agg PATH="$venv/bin:$PATH" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
start=$(date +%s)
mkdir -p results/benchmarks
case "$scale" in
  smoke) python benchmarks/bench_generator.py --batch 2 --repeats 1 --out results/benchmarks/generator-smoke.json ;;
  *)     python benchmarks/bench_generator.py --channels-last --repeats 7 --out results/benchmarks/generator.json ;;
esac
echo "run_all.sh $scale finished in $(( $(date +%s) - start )) s"

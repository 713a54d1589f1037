#!/usr/bin/env bash
# Reproduce the results at one scale: ./run_all.sh [smoke|mini|paper] [name=value ...]
#
# Idempotent set-up first (a cached virtual environment keyed on pyproject.toml); then every notebook runs through
# papermill (kernel python3) with the chosen scale: the FID table of each dataset (training or resuming every row),
# the training curves, the layer-activation analysis and the final tables, which also refresh README.md at mini
# scale. Executed notebooks are kept under results/notebooks/; at mini scale figures go to figures/ and numbers to
# results/ (both committed); smoke writes them under runs/smoke/ instead.
# Extra name=value arguments become notebook parameters (read as YAML values), e.g. at paper scale:
#   ./run_all.sh paper dataset=cifar10 teacher=edm-cifar10-32x32-uncond-ve.pkl data=cifar10-32x32.zip \
#       feature_weights=inception-2015-12-05.pt ref=fid-refs/cifar10-32x32.npz gpus=8
set -euo pipefail
cd "$(dirname "$0")"
scale="${1:-mini}"
shift || true
case "$scale" in
  smoke|mini|paper) ;;
  *) echo "usage: ./run_all.sh [smoke|mini|paper] [name=value ...]" >&2; exit 2 ;;
esac
params=()
for arg in "$@"; do  # name=value -> a YAML parameter, so lists and dicts work: methods='[gdd, gddi]'
  [[ "$arg" == *=* ]] || { echo "run_all.sh: parameters are given as name=value, not '$arg'" >&2; exit 2; }
  params+=(-y "${arg%%=*}: ${arg#*=}")
done
venv="$(bash scripts/setup_env.sh)"
export MPLBACKEND=Agg PATH="$venv/bin:$PATH" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p results/notebooks
notebook() {  # notebook NAME OUTPUT-TAG [papermill options...]
  local name="$1" tag="$2"
  shift 2
  echo "== $name ($tag)"
  papermill "notebooks/$name.ipynb" "results/notebooks/$name-$tag.ipynb" -k python3 --cwd "$PWD" \
    --no-progress-bar "$@"
}
start=$(date +%s)
if [[ "$scale" == paper ]]; then
  notebook fid_table "paper" -p scale paper "${params[@]}"
  notebook tables "paper" -y "{scales: [paper]}" -p readme ""
else
  out=()  # smoke results stay out of the committed results/ and figures/
  [[ "$scale" == smoke ]] && out=(-p results_dir runs/smoke/results -p figures_dir runs/smoke/figures)
  # The two tables run side by side, one thread each: on 2 cores that is about 1.3x faster than one after the
  # other with two threads each (small 8x8 networks scale poorly across threads). Logs: results/notebooks/*.log.
  pids=()
  for dataset in digits digits-cond; do
    OMP_NUM_THREADS=1 notebook fid_table "$dataset-$scale" -p scale "$scale" -p dataset "$dataset" "${out[@]}" \
      "${params[@]}" > "results/notebooks/fid_table-$dataset-$scale.log" 2>&1 &
    pids+=($!)
  done
  failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  for dataset in digits digits-cond; do
    echo "== fid_table ($dataset-$scale): results/notebooks/fid_table-$dataset-$scale.log"
    grep -v -e "WARNING" -e "Executing" "results/notebooks/fid_table-$dataset-$scale.log" | tail -n 20
  done
  (( failed == 0 )) || { echo "run_all.sh: a table notebook failed; see the logs above" >&2; exit 1; }
  notebook training_curves "$scale" -p scale "$scale" "${out[@]}"
  notebook layer_activation "$scale" -p scale "$scale" "${out[@]}"
  # Only the mini tables go into the README.
  notebook tables "$scale" -y "{scales: [$scale]}" -p readme "$([[ "$scale" == mini ]] && echo README.md)" "${out[@]}"
fi
echo "run_all.sh $scale finished in $(( $(date +%s) - start )) s"

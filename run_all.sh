#!/usr/bin/env bash
# Reproduce the results at one scale: ./run_all.sh [MODE] [name=value ...]; or open the notebooks: ./run_all.sh lab
#
# Idempotent set-up first (a cached virtual environment keyed on pyproject.toml, and git's clean filter for the
# notebooks); then the notebooks run through `python -m paperlib notebook` (papermill, kernel python3, every
# parameter name and value checked against the notebook before it starts). Executed notebooks are kept under
# notebooks/executed/ (mini, committed) or results/notebooks/; at mini scale figures go to figures/ and numbers to
# results/ (both committed); other scales write them under runs/<scale>/ instead.
#   smoke          every notebook on tiny networks, in a few minutes: tests the code, not the method
#   mini           the mini-scale results from the run records committed in results/ledger/: the layer study
#                  (computed, training the two networks it needs where this checkout lacks them), each dataset's
#                  protocol table (training only the runs the ledger lacks), the training curves, and the generated
#                  sections of README.md, RESULTS.md and PROTOCOL.md
#   mini-evidence  the protocol's runs (PROTOCOL.md, its amendments included), resumable across days and
#                  machines (--minutes N: stop starting runs after N minutes), then its tables and verdicts
#   mini-check     a stated sample of the ledger's runs retrained from scratch and compared with their records
#   paper          one dataset's table at paper scale, from the files you bring (PAPER_SCALE.md)
#   lab            JupyterLab at the repository root in this environment (as root too)
# Extra name=value arguments become notebook parameters (read as YAML values: methods='[gdd, gddi]'), e.g.:
#   ./run_all.sh paper dataset=cifar10 teacher=edm-cifar10-32x32-uncond-ve.pkl data=cifar10-32x32.zip \
#       feature_weights=inception-2015-12-05.pt ref=fid-refs/cifar10-32x32.npz gpus=8
set -euo pipefail
cd "$(dirname "$0")"
modes="smoke|mini|mini-evidence|mini-check|paper|lab"
scale="${1:-mini}"
shift || true
if [[ ! "|$modes|" == *"|$scale|"* ]]; then
  echo "usage: ./run_all.sh [$modes] [name=value ...]" >&2
  exit 2
fi
params=("$@")
venv="$(bash scripts/setup_env.sh)"
bash scripts/notebook_filter.sh
export MPLBACKEND=Agg PATH="$venv/bin:$PATH" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [[ "$scale" == lab ]]; then
  unset MPLBACKEND  # inline figures in the notebooks
  root_flag=()
  [[ "$(id -u)" == 0 ]] && root_flag=(--allow-root)  # a container's user
  exec jupyter lab --ServerApp.root_dir="$PWD" "${root_flag[@]}" "${params[@]}"
fi
# Executed notebooks: the mini ones are committed (notebooks/executed/, so a reader sees the results inside them
# without running anything); other scales' stay in the ignored results/notebooks/.
executed=results/notebooks
[[ "$scale" == mini* ]] && executed=notebooks/executed
mkdir -p "$executed"
notebook() {  # notebook NAME OUTPUT-TAG [name=value ...]
  local name="$1" tag="$2"
  shift 2
  echo "== $name ($tag): $executed/$name-$tag.ipynb"
  python -m paperlib notebook "$name" "$executed/$name-$tag.ipynb" "$@"
}
start=$(date +%s)
case "$scale" in
  paper)
    notebook fid_table "paper" scale=paper "${params[@]}"
    notebook tables "paper" scale=paper ;;
  mini-check)
    python -m paperlib check ;;
  mini-evidence)  # the rate sweeps first: the tables' and the freeze ablation's rates are chosen from them
    python -m paperlib run rates,freeze-rates --datasets digits,digits-cond "${params[@]}"
    python -m paperlib run evidence,freeze-evidence,confirm --datasets digits,digits-cond "${params[@]}"
    notebook tables "mini" ;;
  mini)
    notebook layer_activation "mini" compute=true
    for dataset in digits digits-cond; do
      notebook fid_table "$dataset-mini" dataset="$dataset" train=true "${params[@]}"
    done
    notebook training_curves "mini"
    notebook tables "mini" ;;
  smoke)
    for dataset in digits digits-cond; do
      notebook fid_table "$dataset-smoke" scale=smoke dataset="$dataset" "${params[@]}"
    done
    notebook layer_activation "smoke" scale=smoke compute=true
    notebook training_curves "smoke" scale=smoke
    notebook tables "smoke" scale=smoke ;;
esac
echo "run_all.sh $scale finished in $(( $(date +%s) - start )) s"

#!/usr/bin/env bash
# Reproduce the results at one scale: ./run_all.sh [MODE] [name=value ...]; or open the notebooks: ./run_all.sh lab
#
# Idempotent set-up first (a cached virtual environment keyed on pyproject.toml); then the notebooks run through
# `python -m paperlib notebook` (papermill, kernel python3, every parameter name and value checked against the
# notebook before it starts) with the chosen scale: the FID table (at mini scale from the run records committed in
# results/ledger/, training only the runs they lack, 3 seeds per trained row, one run per CPU core), the training
# curves, the layer-activation study (computed, training the two networks it needs when this checkout lacks them)
# and the final tables, which also refresh README.md, RESULTS.md and PROTOCOL.md at mini scale. The other mini modes
# run one study of `python -m paperlib run` (paperlib.study.registry), then the final tables. Executed notebooks are kept
# under notebooks/executed/ (mini, committed) or results/notebooks/; at mini scale figures go to figures/ and numbers
# to results/ (both committed); other scales write them under runs/<scale>/ instead.
#   smoke          every notebook on tiny networks, in about two minutes: tests the code, not the method
#   mini           the unconditional digits table (the README's main results), its curves, the layer study, tables
#   mini-cond      the class-conditional digits table, then the tables again
#   mini-sweep     the learning-rate sweeps that chose the mini presets' rates (results/mini/sweep-*.json)
#   mini-ablation  the freeze ablation: FID against the generator's frozen fraction, 3 seeds per level
#   mini-long      the unconditional table's GDD and GDD-I runs at 144 kimg, the paper's number of passes
#   mini-check     a stated sample of the ledger's runs retrained from scratch and compared with their records
#   mini-evidence  the evidence protocol's runs (PROTOCOL.md), resumable across days and machines (--minutes N: stop
#                  starting runs after N minutes)
#   paper          one dataset's table at paper scale, from the files you bring (PAPER_SCALE.md)
#   lab            JupyterLab on notebooks/ in this environment, notebooks kept free of outputs in git
# Extra name=value arguments become notebook parameters (read as YAML values: methods='[gdd, gddi]'), e.g.:
#   ./run_all.sh paper dataset=cifar10 teacher=edm-cifar10-32x32-uncond-ve.pkl data=cifar10-32x32.zip \
#       feature_weights=inception-2015-12-05.pt ref=fid-refs/cifar10-32x32.npz gpus=8
set -euo pipefail
cd "$(dirname "$0")"
modes="smoke|mini|mini-cond|mini-sweep|mini-ablation|mini-long|mini-check|mini-evidence|paper|lab"
scale="${1:-mini}"
shift || true
if [[ ! "|$modes|" == *"|$scale|"* ]]; then
  echo "usage: ./run_all.sh [$modes] [name=value ...]" >&2
  exit 2
fi
params=("$@")
venv="$(bash scripts/setup_env.sh)"
export MPLBACKEND=Agg PATH="$venv/bin:$PATH" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [[ "$scale" == lab ]]; then
  # Notebooks stay output-free in git: a clean filter strips outputs and per-machine metadata on `git add`
  # (the executed copies are committed under notebooks/executed/, which the filter leaves alone).
  git config filter.paperlib-notebook.clean "$venv/bin/python -m paperlib strip-notebook"
  git config filter.paperlib-notebook.smudge cat
  unset MPLBACKEND  # inline figures in the notebooks
  exec jupyter lab --notebook-dir="$PWD" "$PWD/notebooks" "${params[@]}"
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
  mini-sweep)  # 16 kimg per run (a third of the table's budget), seed 0, chosen on the training-split FID
    python -m paperlib run sweep --datasets digits,digits-cond --kimg 16 ;;
  mini-check)
    python -m paperlib check ;;
  mini-evidence)  # the rate sweeps first: the tables' and the freeze ablation's rates are chosen from them
    python -m paperlib run rates,freeze-rates --datasets digits,digits-cond "${params[@]}"
    python -m paperlib run evidence,freeze-evidence --datasets digits,digits-cond "${params[@]}" ;;
  mini-ablation|mini-long)
    python -m paperlib run "${scale#mini-}"
    notebook tables "mini" ;;
  mini-cond)
    notebook fid_table "digits-cond-mini" scale=mini dataset=digits-cond train=true "${params[@]}"
    notebook tables "mini" ;;
  smoke|mini)
    datasets=(digits)
    [[ "$scale" == smoke ]] && datasets=(digits digits-cond)
    # At mini the layer study goes first: it trains the table's seed-1 GDD and GDD-I networks a clone lacks (from the
    # committed table), so that the table's sample grids and copy figure are drawn from networks; at smoke the table
    # it reads is made first.
    [[ "$scale" == mini ]] && notebook layer_activation "$scale" scale="$scale" compute=true
    for dataset in "${datasets[@]}"; do
      notebook fid_table "$dataset-$scale" scale="$scale" dataset="$dataset" train=true "${params[@]}"
    done
    notebook training_curves "$scale" scale="$scale"
    [[ "$scale" == smoke ]] && notebook layer_activation "$scale" scale="$scale" compute=true
    notebook tables "$scale" scale="$scale" ;;
esac
echo "run_all.sh $scale finished in $(( $(date +%s) - start )) s"

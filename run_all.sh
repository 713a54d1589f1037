#!/usr/bin/env bash
# Reproduce the results at one scale: ./run_all.sh [smoke|mini|mini-cond|mini-sweep|mini-ablation|mini-long|mini-check|paper] [name=value ...]
#
# Idempotent set-up first (a cached virtual environment keyed on pyproject.toml); then the notebooks run through
# papermill (kernel python3) with the chosen scale: the FID table (at mini scale from the run records committed in
# results/ledger/, training only the runs they lack, 3 seeds per trained row, one run per CPU core), the training
# curves, the layer-activation analysis (which trains the two networks it needs when this checkout lacks them) and
# the final tables, which also refresh README.md, RESULTS.md and PROTOCOL.md at mini scale. The other mini modes
# run one study of `python -m paperlib run` (paperlib.studies), then the final tables. Executed notebooks are kept under
# notebooks/executed/ (mini, committed) or results/notebooks/; at mini scale figures go to figures/ and numbers to
# results/ (both committed); other scales write them under runs/<scale>/ instead.
#   mini           the unconditional digits table (the README's main results), its curves, the layer study, tables
#   mini-cond      the class-conditional digits table, then the tables again
#   mini-sweep     the learning-rate sweeps that chose the mini presets' rates (results/mini/sweep-*.json)
#   mini-ablation  the freeze ablation: FID against the generator's frozen fraction, 3 seeds per level
#   mini-long      the unconditional table's GDD and GDD-I runs at 144 kimg, the paper's number of passes
#   mini-check     a stated sample of the ledger's runs retrained from scratch and compared with their records
# Extra name=value arguments become notebook parameters (read as YAML values), e.g. at paper scale:
#   ./run_all.sh paper dataset=cifar10 teacher=edm-cifar10-32x32-uncond-ve.pkl data=cifar10-32x32.zip \
#       feature_weights=inception-2015-12-05.pt ref=fid-refs/cifar10-32x32.npz gpus=8
set -euo pipefail
cd "$(dirname "$0")"
scale="${1:-mini}"
shift || true
case "$scale" in
  smoke|mini|mini-cond|mini-sweep|mini-ablation|mini-long|mini-check|paper) ;;
  *) echo "usage: ./run_all.sh [smoke|mini|mini-cond|mini-sweep|mini-ablation|mini-long|mini-check|paper] [name=value ...]" >&2; exit 2 ;;
esac
params=()
for arg in "$@"; do  # name=value -> a YAML parameter, so lists and dicts work: methods='[gdd, gddi]'
  [[ "$arg" == *=* ]] || { echo "run_all.sh: parameters are given as name=value, not '$arg'" >&2; exit 2; }
  params+=(-y "${arg%%=*}: ${arg#*=}")
done
venv="$(bash scripts/setup_env.sh)"
export MPLBACKEND=Agg PATH="$venv/bin:$PATH" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# Executed notebooks: the mini ones are committed (notebooks/executed/, so a reader sees the results inside them
# without running anything); other scales' stay in the ignored results/notebooks/.
executed=results/notebooks
[[ "$scale" == mini* ]] && executed=notebooks/executed
mkdir -p "$executed"
notebook() {  # notebook NAME OUTPUT-TAG [papermill options...]
  local name="$1" tag="$2"
  shift 2
  echo "== $name ($tag): $executed/$name-$tag.ipynb"
  # --log-output: what the cells print (one progress line per training run) reaches this terminal as it comes
  papermill "notebooks/$name.ipynb" "$executed/$name-$tag.ipynb" -k python3 --cwd "$PWD" \
    --no-progress-bar --log-output "$@"
}
start=$(date +%s)
case "$scale" in
  paper)
    notebook fid_table "paper" -p scale paper "${params[@]}"
    notebook tables "paper" -y "{scales: [paper]}" -p readme "" -p results_dir runs/paper/results \
      -p figures_dir runs/paper/figures ;;
  mini-sweep)  # 16 kimg per run (a third of the table's budget), seed 0, chosen on the training-split FID
    python -m paperlib run sweep --datasets digits,digits-cond --kimg 16 ;;
  mini-check)
    python -m paperlib check ;;
  mini-ablation|mini-long)
    python -m paperlib run "${scale#mini-}"
    notebook tables "mini" -y "{scales: [mini]}" -p readme README.md ;;
  mini-cond)
    notebook fid_table "digits-cond-mini" -p scale mini -p dataset digits-cond -p train true "${params[@]}"
    notebook tables "mini" -y "{scales: [mini]}" -p readme README.md ;;
  smoke|mini)
    out=()  # smoke results stay out of the committed results/ and figures/
    [[ "$scale" == smoke ]] && out=(-p results_dir runs/smoke/results -p figures_dir runs/smoke/figures)
    datasets=(digits)
    [[ "$scale" == smoke ]] && datasets=(digits digits-cond)
    for dataset in "${datasets[@]}"; do
      notebook fid_table "$dataset-$scale" -p scale "$scale" -p dataset "$dataset" -p train true "${out[@]}" "${params[@]}"
    done
    notebook training_curves "$scale" -p scale "$scale" "${out[@]}"
    notebook layer_activation "$scale" -p scale "$scale" -p train true "${out[@]}"
    # Only the mini tables go into the README.
    notebook tables "$scale" -y "{scales: [$scale]}" -p readme "$([[ "$scale" == mini ]] && echo README.md)" "${out[@]}" ;;
esac
echo "run_all.sh $scale finished in $(( $(date +%s) - start )) s"

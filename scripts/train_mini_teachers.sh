#!/usr/bin/env bash
# Regenerates the shipped mini teachers (paperlib/assets/teachers/digits-{uncond,cond}.safetensors, shipped as package data): EDM-loss SongUNets trained on
# the digits training split with the mini preset, about 10 minutes each on 2 CPU cores.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="$(bash scripts/setup_env.sh)"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
for kind in uncond cond; do
    preset=digits-teacher; [ "$kind" = cond ] && preset=digits-cond-teacher
    run="runs/mini/teacher-$kind"
    "$venv/bin/python" -m paperlib train --preset "$preset" --run-dir "$run" --resume --no-progress "$@"
    mkdir -p paperlib/assets/teachers
    cp "$run/network.safetensors" "paperlib/assets/teachers/digits-$kind.safetensors"
done

#!/usr/bin/env bash
# Regenerates the shipped mini teachers (teachers/digits-{uncond,cond}.safetensors): EDM-loss SongUNets trained on
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
    mkdir -p teachers
    cp "$run/network.safetensors" "teachers/digits-$kind.safetensors"
done

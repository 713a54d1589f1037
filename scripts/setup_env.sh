#!/usr/bin/env bash
# Idempotent set-up: a virtual environment keyed on the dependency files, reused while they are unchanged.
# Prints nothing but errors; sourcing it is not needed: callers use "$(scripts/setup_env.sh)/bin/python".
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
key="$(cat "$root/pyproject.toml" "$root/scripts/setup_env.sh" | sha256sum | cut -c1-16)"
cache="${PAPERLIB_ENV_CACHE:-$HOME/.cache/paperlib}"
venv="$cache/venv-$key"
if [ ! -f "$venv/.complete" ]; then
    rm -rf "$venv"
    mkdir -p "$cache"
    python3 -m venv "$venv" >&2
    # torch and torchvision first, as a matching pair: on these machines 2.14.1/0.29.1 come from local disk.
    "$venv/bin/pip" install -q "torch==2.14.1" "torchvision==0.29.1" >&2 \
        || "$venv/bin/pip" install -q torch torchvision >&2
    "$venv/bin/pip" install -q "$root[dev]" >&2
    touch "$venv/.complete"
fi
# The package itself is installed editable from this checkout every time (cheap, no dependencies).
"$venv/bin/pip" install -q --no-deps --no-build-isolation -e "$root" >&2
echo "$venv"

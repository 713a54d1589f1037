#!/usr/bin/env bash
# Idempotent set-up: a virtual environment with paperlib's dependencies, keyed on the dependency files and
# reused while they are unchanged. paperlib itself is not installed into it (the cache is shared between
# checkouts); callers put the checkout on PYTHONPATH. Prints the venv path on stdout, progress on stderr.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
key="$(cat "$root/pyproject.toml" "$root/scripts/setup_env.sh" | sha256sum | cut -c1-16)"
cache="${PAPERLIB_ENV_CACHE:-$HOME/.cache/paperlib}"
venv="$cache/venv-$key"
if [ ! -f "$venv/.complete" ]; then
    echo "setting up $venv (once per dependency set)" >&2
    rm -rf "$venv"
    mkdir -p "$cache"
    python3 -m venv "$venv" >&2
    pip_quiet() { "$venv/bin/pip" install -q "$@" 2> >(grep -v "^WARNING: Location" >&2) >&2; }
    # torch and torchvision first, as a matching pair: on these machines 2.14.1/0.29.1 come from local disk.
    pip_quiet "torch==2.14.1" "torchvision==0.29.1" || pip_quiet torch torchvision
    deps="$("$venv/bin/python" - "$root/pyproject.toml" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["dev"]))
PY
)"
    mapfile -t dep_list <<< "$deps"
    pip_quiet "${dep_list[@]}"
    touch "$venv/.complete"
fi
echo "$venv"

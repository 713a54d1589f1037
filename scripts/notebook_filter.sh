#!/usr/bin/env bash
# git's clean filter for notebooks/ (.gitattributes): the form git keeps of a notebook (paperlib/notebook/strip.py,
# standard library only, so any python3 runs it and no venv path is written into the clone's config). Both README
# commands set it, so it is in place however the notebooks are opened afterwards. Outside a git checkout: nothing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$root" config filter.paperlib-notebook.clean "python3 -m paperlib.notebook.strip"
    git -C "$root" config filter.paperlib-notebook.smudge cat
fi

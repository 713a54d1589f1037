"""The form git keeps of the notebooks in notebooks/: no outputs, execution counts or per-machine metadata, the
kernel python3, every key sorted and every source a list of lines, as JupyterLab writes a notebook, so that saving
one from JupyterLab (whatever order its keys came in) leaves it unmodified in git. The executed copies, outputs
included, live in notebooks/executed/, which the filter leaves alone.

git's clean filter for notebooks/ runs ``python3 -m paperlib.notebook.strip`` (stdin to stdout) from the
checkout's root; ``scripts/setup_env.sh`` sets it up, so either README command puts it in place. It needs nothing
but Python's standard library, so it works from any Python 3, in or out of paperlib's environment.
"""

from __future__ import annotations

import json
import sys

KEPT_CELL_METADATA = ("tags",)  # papermill's parameters tag; JupyterLab's view state (collapsed, scrolled) goes


def _lines(source) -> list[str]:
    text = "".join(source) if isinstance(source, list) else source
    return text.splitlines(keepends=True)


def strip_outputs(text: str) -> str:
    """A notebook's JSON (``text``) in the form git keeps (see the module's docstring)."""
    notebook = json.loads(text)
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cell["metadata"] = {k: v for k, v in cell.get("metadata", {}).items() if k in KEPT_CELL_METADATA}
        cell["source"] = _lines(cell.get("source", ""))
    notebook["metadata"] = dict(kernelspec=dict(display_name="Python 3", language="python", name="python3"),
                                language_info=dict(name="python"))
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(strip_outputs(sys.stdin.read()))

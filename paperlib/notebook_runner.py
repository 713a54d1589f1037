"""Running a notebook in batch, safely: its parameter names checked against its parameters cell (papermill itself
only warns on a name the notebook lacks, and runs the defaults) and their values against
:mod:`paperlib.notebook_params`, before a kernel starts; then papermill, with the cells' printed lines passed on as
they come. Also the clean filter that keeps notebooks/ free of outputs in git (``./run_all.sh lab`` sets it up).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import yaml

from paperlib.io import ROOT
from paperlib.notebook_params import SPECS, ParameterError, check

NOTEBOOKS = ROOT / "notebooks"


def parse_assignments(pairs: list[str]) -> dict:
    """``name=value`` pairs as parameters, each value read as YAML (so ``methods=[gdd, gddi]`` is a list and
    ``train=false`` a boolean; an empty value is the empty string)."""
    parameters = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.isidentifier():
            raise ParameterError(f"parameters are given as name=value, not {pair!r}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        parameters[name] = "" if value is None else value
    return parameters


def check_parameters(name: str, parameters: dict) -> None:
    """Refuse a parameter ``name``'s notebook does not declare in its parameters cell (as papermill reads it), and
    a value :func:`paperlib.notebook_params.check` refuses; one-line ParameterError."""
    import papermill as pm

    path = NOTEBOOKS / f"{name}.ipynb"
    if name not in SPECS or not path.exists():
        raise ParameterError(f"no notebook {name!r}; expected one of {', '.join(SPECS)}")
    declared = pm.inspect_notebook(str(path))
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ParameterError(f"{path.name} has no parameter {', '.join(map(repr, unknown))}; its parameters: "
                             f"{', '.join(declared)}")
    check(name, parameters)


def run_notebook(name: str, out: str | Path, parameters: dict, log_output: bool = True) -> None:
    """Check ``parameters`` (:func:`check_parameters`), then execute ``notebooks/<name>.ipynb`` with them into ``out``
    from the checkout's root, kernel python3, each printed line logged as it comes."""
    import papermill as pm

    check_parameters(name, parameters)
    if log_output:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        logging.getLogger("papermill").setLevel(logging.INFO)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    # The kernel does not capture its child processes' output (the training pool's workers): they print to this
    # terminal once, where a captured copy would repeat every line in the log.
    pm.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(out), parameters=parameters, kernel_name="python3",
                        cwd=str(ROOT), progress_bar=False, log_output=log_output,
                        extra_arguments=["--IPKernelApp.capture_fd_output=False"])


def strip_outputs(text: str) -> str:
    """A notebook's JSON without outputs, execution counts or per-machine metadata, its kernel python3: what git
    keeps of notebooks/ (the executed copies live in notebooks/executed/)."""
    notebook = json.loads(text)
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cell.get("metadata", {}).pop("execution", None)
        cell.get("metadata", {}).pop("papermill", None)
    metadata = notebook.setdefault("metadata", {})
    metadata.pop("papermill", None)
    metadata.pop("widgets", None)
    metadata["kernelspec"] = dict(display_name="Python 3", language="python", name="python3")
    metadata["language_info"] = dict(name="python")
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"

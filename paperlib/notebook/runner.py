"""Running a notebook in batch, safely: its parameter names checked against its parameters cell (papermill itself
only warns on a name the notebook lacks, and runs the defaults) and their values against
:mod:`paperlib.notebook.params`, before a kernel starts; then papermill, with the cells' printed lines passed on as
they come."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from paperlib.assets import ROOT
from paperlib.notebook.params import SPECS, ParameterError, check
from paperlib.store.network_config import ConfigError, check_structure

NOTEBOOKS = ROOT / "notebooks"
MAX_VALUE_CHARS = 10_000  # a parameter's value as given (paths, lists of methods)


def parse_assignments(pairs: list[str]) -> dict:
    """``name=value`` pairs as parameters, each value read as YAML (so ``methods=[gdd, gddi]`` is a list and
    ``train=false`` a boolean; an empty value is the empty string), bounded in length, depth and size first."""
    parameters = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.isidentifier():
            raise ParameterError(f"parameters are given as name=value, not {pair!r}")
        if len(text) > MAX_VALUE_CHARS:
            raise ParameterError(f"{name}: a value of {len(text):,} characters; a parameter holds at most "
                                 f"{MAX_VALUE_CHARS:,}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        except RecursionError:
            raise ParameterError(f"{name}: its value nests too deep to read") from None
        try:  # YAML's aliases share one node at many places: bounded before anything expands them
            check_structure(value, f"parameter {name}")
        except ConfigError as exc:
            raise ParameterError(str(exc)) from None
        parameters[name] = "" if value is None else value
    return parameters


def check_parameters(name: str, parameters: dict) -> None:
    """Refuse a parameter ``name``'s notebook does not declare in its parameters cell (as papermill reads it), and
    a value :func:`paperlib.notebook.params.check` refuses; one-line ParameterError."""
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


def check_output(out: str | Path) -> None:
    """Refuse (ParameterError) an output that is not a local path (papermill would write to ``s3://``, ``http://``
    and other URLs) or that is one of the notebooks' sources (running would overwrite it)."""
    if "://" in str(out):
        raise ParameterError(f"{out}: the executed notebook is written to a local path, not a URL")
    sources = {p.resolve() for p in NOTEBOOKS.glob("*.ipynb")}
    if Path(out).resolve() in sources:
        raise ParameterError(f"{out}: is a notebook's source; write the executed notebook elsewhere (e.g. "
                             f"notebooks/executed/ or results/notebooks/)")


def run_notebook(name: str, out: str | Path, parameters: dict, log_output: bool = True) -> None:
    """Check ``parameters`` (:func:`check_parameters`) and ``out`` (:func:`check_output`), then execute
    ``notebooks/<name>.ipynb`` with them into ``out`` from the checkout's root, kernel python3, each printed line
    logged as it comes."""
    import papermill as pm

    check_parameters(name, parameters)
    check_output(out)
    if log_output:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        logging.getLogger("papermill").setLevel(logging.INFO)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    # The kernel does not capture its child processes' output (the training pool's workers): they print to this
    # terminal once, where a captured copy would repeat every line in the log.
    pm.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(out), parameters=parameters, kernel_name="python3",
                        cwd=str(ROOT), progress_bar=False, log_output=log_output,
                        extra_arguments=["--IPKernelApp.capture_fd_output=False"])


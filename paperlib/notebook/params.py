"""The notebooks' parameters, typed and checked in one place: one spec per notebook (name, default, kind, allowed
values), the coercion of papermill's strings ("false", "[gdd, gddi]", "0.5") into those kinds, and the set-up
call every notebook opens with (:func:`setup`). A bad value is refused with one line naming the allowed ones,
before anything runs; :mod:`paperlib.notebook.runner` also refuses a parameter name the notebook does not have.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import yaml

from paperlib.assets import ROOT
from paperlib.presets import PAPER_DATASETS
from paperlib.study.layers import LAYER_SIZES
from paperlib.study.protocol import MINI_DATASETS
from paperlib.study.tables.request import METHODS, SCALES, TableRequest


class ParameterError(ValueError):
    """A notebook parameter of the wrong kind or value; the message names it and what is allowed."""


@dataclass(frozen=True)
class Param:
    """One notebook parameter: its default (as the notebook's parameters cell writes it), its kind ('str', 'bool',
    'int', 'float', 'list', 'dict'), the values allowed (a choice, or each item of a list) and the least number
    allowed (int/float)."""

    default: object
    kind: str
    choices: tuple = ()
    least: float | None = None


DATASETS = MINI_DATASETS + tuple(PAPER_DATASETS)
DEVICES = ("auto", "cpu", "cuda")
_DIRS = dict(results_dir=Param("results", "str"), figures_dir=Param("figures", "str"))

SPECS: dict[str, dict[str, Param]] = {
    "fid_table": dict(
        dataset=Param("digits", "str", DATASETS), scale=Param("mini", "str", SCALES), train=Param(False, "bool"),
        device=Param("auto", "str", DEVICES), workers=Param(0, "int", least=0), teacher=Param("", "str"),
        data=Param("", "str"), feature_weights=Param("", "str"), ref=Param("", "str"),
        kimg=Param(0.0, "float", least=0), gpus=Param(1, "int", least=1), fid_num=Param(0, "int", least=0),
        seeds=Param([], "list"), methods=Param([m for _, m in METHODS], "list", tuple(m for _, m in METHODS)),
        released=Param({}, "dict"), backbone_weights=Param({}, "dict"), class_embedding=Param("", "str"),
        runs_dir=Param("runs", "str"), **_DIRS),
    "layer_activation": dict(
        dataset=Param("digits", "str", MINI_DATASETS), scale=Param("mini", "str", SCALES), teacher=Param("", "str"),
        generators=Param({}, "dict"), compute=Param(False, "bool"), data=Param("digits-8:train", "str"),
        num_sigmas=Param(0, "int", least=0), sigma_min=Param(0.002, "float", least=0),
        sigma_max=Param(80.0, "float", least=0), batch=Param(0, "int", least=0),
        device=Param("auto", "str", DEVICES), runs_dir=Param("runs", "str"), **_DIRS),
    "training_curves": dict(datasets=Param(list(MINI_DATASETS), "list", DATASETS), scale=Param("mini", "str", SCALES),
                            **_DIRS),
    "tables": dict(scale=Param("mini", "str", SCALES), **_DIRS, readme=Param("README.md", "str")),
}

def output_dirs(scale: str, results_dir: str = "results", figures_dir: str = "figures") -> tuple[str, str]:
    """Where a notebook at ``scale`` writes: the committed ``results``/``figures`` hold the mini scale only, so
    another scale left at those defaults writes under ``runs/<scale>/`` instead (explicit other folders are kept)."""
    if scale != "mini":
        results_dir = f"runs/{scale}/results" if results_dir == "results" else results_dir
        figures_dir = f"runs/{scale}/figures" if figures_dir == "figures" else figures_dir
    return results_dir, figures_dir


_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off", "")


def coerce(name: str, value, param: Param):
    """``value`` as the kind ``param`` declares, from itself or from a string as papermill passes it ('false',
    '[gdd, gddi]', '3'); ParameterError (one line, naming ``name`` and what is allowed) when it is not one."""
    def fail(why: str):
        allowed = f"; allowed: {', '.join(map(str, param.choices))}" if param.choices else ""
        raise ParameterError(f"parameter {name} = {value!r}: {why}{allowed}")

    kind = param.kind
    if isinstance(value, str) and kind != "str":
        if kind == "bool":
            if value.strip().lower() not in _TRUE + _FALSE:
                fail("expected true or false")
            return value.strip().lower() in _TRUE
        try:
            value = yaml.safe_load(value) if value.strip() else ({} if kind == "dict" else [] if kind == "list" else value)
        except yaml.YAMLError:
            fail(f"not a {kind}")
        if kind == "list" and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]  # 'gdd,gddi'
    if kind == "bool" and not isinstance(value, bool):
        fail("expected true or false")
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        fail("expected a whole number")
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail("expected a number")
        value = float(value)
    if kind == "str" and not isinstance(value, str):
        fail("expected text")
    if kind == "list" and not isinstance(value, list):
        fail("expected a list, e.g. [a, b]")
    if kind == "dict" and not isinstance(value, dict):
        fail("expected a mapping, e.g. {GDD: path}")
    if param.least is not None and value < param.least:
        fail(f"expected at least {param.least:g}")
    if param.choices:
        items = value if kind == "list" else [value]
        bad = [v for v in items if v not in param.choices and not (param.choices == DEVICES and str(v).startswith("cuda:"))]
        if bad:
            fail(f"{', '.join(map(repr, bad))} not allowed")
    return value


def check(notebook: str, given: dict) -> SimpleNamespace:
    """Every parameter of ``notebook`` from ``given`` (the notebook's globals, or name=value pairs), coerced and
    checked (a missing one takes its default); names in ``given`` that are not parameters are ignored here (the
    runner refuses them). Returns them as attributes."""
    if notebook not in SPECS:
        raise ParameterError(f"no notebook {notebook!r}; expected one of {', '.join(SPECS)}")
    return SimpleNamespace(**{name: coerce(name, given.get(name, param.default), param)
                              for name, param in SPECS[notebook].items()})


def setup(notebook: str, given: dict) -> SimpleNamespace:
    """The first call of every notebook: work from the checkout's root (JupyterLab opens notebooks/), check the
    parameters (:func:`check`), and resolve where this scale writes: the committed results/, figures/ and README
    only at mini scale, ``runs/<scale>/`` otherwise (folders given explicitly are kept); the layer study's sizes
    (0: the scale's, :data:`~paperlib.study.layers.LAYER_SIZES`); fid_table's checked ``request``
    (:class:`~paperlib.study.tables.request.TableRequest`)."""
    if Path.cwd().name == "notebooks" and Path.cwd().parent == ROOT:
        os.chdir(ROOT)
    p = check(notebook, given)
    p.results_dir, p.figures_dir = output_dirs(p.scale, p.results_dir, p.figures_dir)
    if notebook == "tables" and p.scale != "mini" and p.readme and Path(p.readme).resolve() == ROOT / "README.md":
        p.readme = ""  # the committed README shows the mini results only
    if notebook == "layer_activation":
        for key, value in LAYER_SIZES[p.scale].items():
            setattr(p, key, getattr(p, key) or value)
    if notebook == "fid_table":
        p.request = TableRequest(
            dataset=p.dataset, scale=p.scale, teacher=p.teacher, data=p.data, feature_weights=p.feature_weights,
            ref=p.ref, kimg=p.kimg, device=p.device, gpus=p.gpus, fid_num=p.fid_num, seeds=p.seeds, workers=p.workers,
            methods=p.methods, released=p.released, backbone_weights=p.backbone_weights,
            class_embedding=p.class_embedding, runs=p.runs_dir, results=p.results_dir, figures=p.figures_dir).validate()
    return p

"""Every notebook runs under papermill at smoke scale (kernel python3); its results JSON is checked for schema and
finite values; bad parameters fail in the notebook's first cells with a clear message."""

import json
import math
import re
from pathlib import Path

import papermill as pm
import pytest

from paperlib.__main__ import main

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def run(name, cwd, out_dir=None, **parameters):
    """Execute a notebook with ``parameters`` from ``cwd``, its executed copy in ``out_dir`` (default ``cwd``), after
    checking the parameter names against the notebook's parameters cell (papermill alone would only warn)."""
    declared = pm.inspect_notebook(str(NOTEBOOKS / f"{name}.ipynb"))
    assert set(parameters) <= set(declared), f"{name}.ipynb has no parameter {set(parameters) - set(declared)}"
    return pm.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str((out_dir or cwd) / f"{name}.out.ipynb"),
                               parameters=parameters, kernel_name="python3", progress_bar=False, cwd=str(cwd))


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, smoke_teacher):
    """fid_table.ipynb at smoke scale for digits, into a temporary tree (runs, results, figures)."""
    root = tmp_path_factory.mktemp("smoke")
    paths = dict(runs_dir=str(root / "runs"), results_dir=str(root / "results"), figures_dir=str(root / "figures"))
    # GDD and GDD-I only: the instance and small-D rows are the same row code, and their presets train in test_train
    run("fid_table", root, dataset="digits", scale="smoke", teacher=smoke_teacher, methods=["gdd", "gddi"], **paths)
    return root, paths


def finite(value):
    return value is None or (isinstance(value, (int, float)) and math.isfinite(value)) or isinstance(value, str)


def test_fid_table_notebook_writes_a_complete_table(smoke_run, smoke_teacher, capsys):
    root, paths = smoke_run
    table = json.loads((root / "results" / "digits" / "smoke" / "table.json").read_text())
    assert {"dataset", "scale", "eval_num", "rows", "feature_net", "request"} <= set(table)
    names = [r["row"] for r in table["rows"]]
    assert names[:6] == [f"teacher, Heun NFE {n}" for n in (1, 3, 5, 9, 17, 35)]
    assert names[6:8] == ["GDD (NFE 1)", "GDD-I (NFE 1)"]
    assert names[8:] == ["real data: held-out split (360)", "real data: training subsample (360)"]
    for row in table["rows"]:
        values = [v for k, v in row.items() if k not in ("run_dir", "run_dirs", "curve")
                  for v in (v if isinstance(v, list) else [v])]
        assert all(finite(v) for v in values), row
        assert all(math.isfinite(row[k]) for k in ("fid", "kid", "precision", "recall"))
    students = {r["row"]: r for r in table["rows"][6:8]}
    assert students["GDD-I (NFE 1)"]["frozen_fraction"] > 0.5 and students["GDD (NFE 1)"]["frozen_fraction"] == 0
    assert len({r["kimg"] for r in students.values()}) == 1  # the same image budget for every student
    assert all(r["train_seconds"] > 0 for r in students.values())
    reported = {r["row"]: r["reported_fid"] for r in table["rows"]}
    assert reported["teacher, Heun NFE 35"] == 1.97 and reported["GDD-I (NFE 1)"] == 1.54  # CIFAR-10 stand-in
    assert reported["teacher, Heun NFE 17"] is None
    for name in ("table_digits_smoke.md", "samples_digits_smoke_teacher-nfe35.png", "samples_digits_smoke_gddi.png",
                 "nearest_digits_smoke_gddi.png"):
        assert (root / "figures" / name).stat().st_size > 0
    # The command line builds the same table from the same (finished, so resumed) runs.
    assert main(["table", "--dataset", "digits", "--scale", "smoke", "--teacher", smoke_teacher, "--runs", paths["runs_dir"],
                 "--results", str(root / "cli"), "--figures", str(root / "cli"), "--methods", "gdd,gddi"]) == 0
    again = json.loads((root / "cli" / "digits" / "smoke" / "table.json").read_text())
    assert [r["fid"] for r in again["rows"]] == pytest.approx([r["fid"] for r in table["rows"]])
    assert "| GDD-I (NFE 1) |" in capsys.readouterr().out


@pytest.fixture(scope="module")
def layer_run(smoke_run):
    """layer_activation.ipynb at smoke scale on the smoke table's runs; the tables notebook reads its results."""
    root, paths = smoke_run
    run("layer_activation", root, dataset="digits", scale="smoke", compute=True, results_dir=paths["results_dir"],
        figures_dir=paths["figures_dir"], runs_dir=paths["runs_dir"])
    return smoke_run


def test_layer_activation_notebook(layer_run):
    root, paths = layer_run
    numbers = json.loads((root / "results" / "digits" / "smoke" / "layer_activation.json").read_text())
    layers, sigmas = len(numbers["layers"]), len(numbers["sigmas"])
    assert sigmas == 8 and layers > 10 and set(numbers["generators"]) == {"GDD", "GDD-I"}  # smoke: 8 noise levels
    for part in ("trained", "untrained"):
        heat = numbers[part]["heatmap"]
        assert len(heat) == layers and all(len(r) == sigmas and all(0 <= v <= 1 for v in r) for r in heat)
    gddi = numbers["generators"]["GDD-I"]
    assert len(gddi["best_sigma"]) == layers and all(math.isfinite(v) for v in gddi["weight_change"])
    assert numbers["summary"]["GDD-I"]["unchanged_layers"] > numbers["summary"]["GDD"]["unchanged_layers"]
    assert all(math.isfinite(v) for v in numbers["summary"].values() if isinstance(v, float))
    for name in ("layer_activation_digits_smoke.png", "layer_similarity_digits_smoke.png",
                 "layer_generators_digits_smoke.png"):
        assert (root / "figures" / name).stat().st_size > 0


def test_training_curves_and_tables_notebooks(layer_run):
    root, paths = layer_run
    run("training_curves", root, datasets=["digits"], scale="smoke", results_dir=paths["results_dir"],
        figures_dir=paths["figures_dir"])
    table = json.loads((root / "results" / "digits" / "smoke" / "table.json").read_text())
    for row in (r for r in table["rows"] if r.get("curve")):
        curve = row["curve"]
        assert curve["kimg"] == [0.16, 0.32] and all(math.isfinite(v) for v in curve["fid"] + curve["fid_test"])
    for name in ("training_curves_digits_smoke.png", "progress_digits_smoke_gddi.png", "figure1a_smoke.png"):
        assert (root / "figures" / name).stat().st_size > 0

    # At smoke and paper scale the tables notebook, run from the repository, never touches the committed files (only
    # the mini scale writes the documents' generated sections): with tables it writes under its own folders, without
    # any it stops before writing.
    committed = NOTEBOOKS.parent
    watched = [committed / n for n in ("README.md", "RESULTS.md", "PROTOCOL.md")] + sorted((committed / "figures").rglob("*"))
    before = {p: p.read_bytes() for p in watched if p.is_file()}
    run("tables", committed, root, scale="smoke", results_dir=paths["results_dir"], figures_dir=paths["figures_dir"])
    assert (root / "figures" / "table_digits_smoke.png").stat().st_size > 0
    gathered = (root / "figures" / "tables.md").read_text()
    assert "### digits (smoke scale)" in gathered and "| GDD-I (NFE 1) |" in gathered
    assert "The claim that layers are activated differently" in gathered  # from the layer_run fixture's results
    with pytest.raises(pm.PapermillExecutionError, match="no table.json of scale 'paper'"):
        run("tables", committed, root, scale="paper")
    assert {p: p.read_bytes() for p in watched if p.is_file()} == before
    assert sorted((committed / "figures").rglob("*")) == [p for p in watched if p.parent.is_relative_to(committed / "figures")]

def test_fid_table_bad_parameters_fail_before_training(tmp_path):
    dirs = dict(runs_dir=str(tmp_path / "runs"), results_dir=str(tmp_path / "results"),
                figures_dir=str(tmp_path / "figures"))
    with pytest.raises(pm.PapermillExecutionError) as info:
        run("fid_table", tmp_path, dataset="mnist", scale="mini", **dirs)
    assert "parameter dataset = 'mnist': 'mnist' not allowed; allowed: digits, " in str(info.value.evalue)
    assert info.value.exec_count == 3  # parameters, injected parameters, then the validation cell
    # the validation cell is one call; the other refusals through that call, without a kernel each
    from paperlib.notebook.params import setup

    for parameters, message in [(dict(dataset="cifar10", scale="mini"), "it is a paper-scale dataset"),
                                (dict(dataset="cifar10", scale="paper"), "paper scale needs teacher=PATH"),
                                (dict(dataset="digits", scale="smoke", teacher="/nonexistent/teacher.safetensors"),
                                 "teacher: no file or folder")]:
        with pytest.raises(Exception, match=re.escape(message)):
            setup("fid_table", dict(dirs, **parameters))
    assert not (tmp_path / "runs").exists()


def test_curves_notebook_without_tables_says_what_to_run(tmp_path):
    with pytest.raises(pm.PapermillExecutionError) as info:
        run("training_curves", tmp_path, datasets=["digits"], scale="mini", results_dir=str(tmp_path))
    assert "run python -m paperlib run evidence --datasets digits first" in str(info.value.evalue)



def test_only_the_mini_scale_writes_the_committed_folders():
    from paperlib.notebook.params import output_dirs

    assert output_dirs("mini") == ("results", "figures")
    assert output_dirs("smoke") == ("runs/smoke/results", "runs/smoke/figures")
    assert output_dirs("paper", "results", "/data/figs") == ("runs/paper/results", "/data/figs")


def test_run_all_of_every_notebook_at_its_defaults_writes_nothing_that_differs(tmp_path):
    """A fresh clone has the committed results, figures, documents and run records but no runs/: every notebook runs
    at its defaults without an error (from a copy of those files, so the repository is not touched), trains nothing,
    and leaves every file as committed: fid_table assembles the protocol's table from the records, layer_activation
    shows the committed study, training_curves and tables draw and write from the committed files alone."""
    import shutil

    root = NOTEBOOKS.parent
    kept = ["results", "figures", "README.md", "RESULTS.md", "PROTOCOL.md"]
    for name in kept:
        (shutil.copytree if (root / name).is_dir() else shutil.copy)(root / name, tmp_path / name)
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    (tmp_path / "executed").mkdir()
    printed = {}
    for name in ("fid_table", "layer_activation", "training_curves", "tables"):
        out = run(name, tmp_path, tmp_path / "executed")
        assert not [o for c in out.cells if c.cell_type == "code" for o in c.outputs if o.get("output_type") == "error"]
        printed[name] = "".join(o.get("text", "") + o.get("data", {}).get("text/markdown", "")
                                for c in out.cells if c.cell_type == "code" for o in c.outputs)
    assert "47 of 47 runs recorded" in printed["fid_table"] and "nothing was trained or written" in printed["fid_table"]
    assert "**holds**" in printed["fid_table"] and "showing the study written before" in printed["layer_activation"]
    shutil.rmtree(tmp_path / "executed")
    after = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert sorted(after) == sorted(before) and not (tmp_path / "runs").exists()
    assert [p for p in before if after[p] != before[p]] == []

"""The notebooks' parameters: one checked spec per notebook, equal to the notebook's own parameters cell;
papermill's strings coerced ('false' is False, '[gdd, gddi]' a list); a bad value or an unknown name refused in one
line before a kernel starts; outputs never committed in notebooks/."""

import ast
from pathlib import Path

import papermill as pm
import pytest

from paperlib.__main__ import main
from paperlib.notebook.params import SPECS, ParameterError, check, setup
from paperlib.notebook.runner import check_parameters, parse_assignments
from paperlib.notebook.strip import strip_outputs

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_each_spec_is_its_notebooks_parameters_cell_and_the_notebook_has_no_outputs(name):
    declared = pm.inspect_notebook(str(NOTEBOOKS / f"{name}.ipynb"))
    assert list(declared) == list(SPECS[name])
    assert {k: ast.literal_eval(v["default"]) for k, v in declared.items()} == {k: p.default for k, p in SPECS[name].items()}
    text = (NOTEBOOKS / f"{name}.ipynb").read_text()
    assert strip_outputs(text) == text, f"{name}.ipynb is not in the form git's clean filter writes"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_saving_from_jupyterlab_leaves_a_notebook_unmodified_in_git(name):
    """JupyterLab writes keys sorted, adds outputs, execution counts, view state and its kernel's metadata; the clean
    filter (run by git from the checkout's root with any python3, without paperlib's environment) gives back the
    committed bytes, whatever the key order it is handed."""
    import json
    import os
    import subprocess

    committed = (NOTEBOOKS / f"{name}.ipynb").read_text()
    saved = json.loads(committed)
    for cell in saved["cells"]:
        cell["metadata"]["collapsed"] = False
        if cell["cell_type"] == "code":
            cell["execution_count"] = 7
            cell["outputs"] = [dict(output_type="stream", name="stdout", text=["printed\n"])]
    saved["metadata"]["language_info"] = dict(name="python", version="3.11.7", mimetype="text/x-python")
    saved["metadata"]["widgets"] = {}
    reordered = json.dumps({k: saved[k] for k in reversed(list(saved))}, indent=2)
    assert strip_outputs(reordered) == committed
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    filtered = subprocess.run(["python3", "-m", "paperlib.notebook.strip"], input=reordered, cwd=NOTEBOOKS.parent,
                              env=env, capture_output=True, text=True, timeout=60)
    assert filtered.returncode == 0 and filtered.stdout == committed, filtered.stderr[-2000:]


def test_papermill_strings_are_read_as_the_kinds_the_notebook_means():
    p = check("fid_table", dict(train="false", methods="[gdd, gddi]", seeds="[1, 2]", kimg="16", fid_num="100"))
    assert p.train is False and p.methods == ["gdd", "gddi"] and p.seeds == [1, 2] and p.kimg == 16.0 and p.fid_num == 100
    assert check("fid_table", dict(train="True", methods="gdd,instance")).methods == ["gdd", "instance"]
    assert check("layer_activation", dict(compute="yes")).compute is True
    assert parse_assignments(["methods=[gdd, gddi]", "train=false", "teacher=", "dataset=digits-cond"]) == dict(
        methods=["gdd", "gddi"], train=False, teacher="", dataset="digits-cond")


@pytest.mark.parametrize("given, message", [
    (dict(train="maybe"), r"parameter train = 'maybe': expected true or false"),
    (dict(methods="[gdd, gddx]"), r"'gddx' not allowed; allowed: gdd, gddi, instance, gddi-smalld"),
    (dict(scale="medium"), r"allowed: smoke, mini, paper"),
    (dict(fid_num=-1), r"expected at least 0"),
    (dict(workers=1.5), r"expected a whole number"),
    (dict(released="[a]"), r"expected a mapping"),
])
def test_bad_values_are_refused_in_one_line_naming_what_is_allowed(given, message):
    with pytest.raises(ParameterError, match=message) as info:
        check("fid_table", given)
    assert "\n" not in str(info.value)


def test_an_unknown_name_is_refused_before_a_kernel_starts(tmp_path, capsys):
    with pytest.raises(ParameterError, match=r"fid_table.ipynb has no parameter 'datset'; its parameters: dataset, "):
        check_parameters("fid_table", dict(datset="digits-cond"))
    assert main(["notebook", "tables", str(tmp_path / "out.ipynb"), "scael=smoke"]) == 2
    assert "tables.ipynb has no parameter 'scael'" in capsys.readouterr().err and not (tmp_path / "out.ipynb").exists()


def test_setup_keeps_other_scales_out_of_the_committed_files():
    p = setup("tables", dict(scale="smoke"))
    assert (p.results_dir, p.figures_dir, p.readme) == ("runs/smoke/results", "runs/smoke/figures", "")
    assert setup("tables", dict(scale="mini")).readme == "README.md"
    layer = setup("layer_activation", dict(scale="smoke"))
    assert (layer.num_sigmas, layer.batch) == (8, 32) and setup("layer_activation", {}).num_sigmas == 32


def test_a_notebook_never_writes_over_a_source_or_to_a_url(tmp_path, capsys):
    source = Path(__file__).resolve().parent.parent / "notebooks" / "tables.ipynb"
    committed = source.read_bytes()
    link = tmp_path / "link.ipynb"
    link.symlink_to(source)
    for out, why in ((source, "is a notebook's source"), (link, "is a notebook's source"),
                     ("s3://bucket/out.ipynb", "written to a local path, not a URL")):
        assert main(["notebook", "tables", str(out)]) == 2
        err = capsys.readouterr().err
        assert why in err and len(err.strip().splitlines()) == 1, err
    assert source.read_bytes() == committed


def test_a_parameter_value_is_bounded_before_yaml_aliases_expand_it(capsys):
    levels = ["a0: &a0 [" + ", ".join(["1"] * 10) + "]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)]  # 10^7 values
    for value, why in (("{" + ", ".join(levels) + "}", "parameter methods: its value expands to more than 1,000"),
                       ("[" * 50 + "]" * 50, "nests deeper than 8 levels"), ("x" * 20_000, "at most 10,000")):
        assert main(["notebook", "tables", "out.ipynb", f"methods={value}"]) == 2
        assert why in capsys.readouterr().err

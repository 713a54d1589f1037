"""paperlib installs as a package: the wheel carries what the mini scale needs, an installed copy finds its shipped
files from any folder, and environment.yml lists exactly pyproject's dependencies."""

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ["paperlib/assets/digits_featnet.safetensors", "paperlib/assets/teachers/digits-uncond.safetensors",
           "paperlib/assets/teachers/digits-cond.safetensors", "paperlib/assets/digits_vgg.safetensors",
           "paperlib/assets/digits_mbnet.safetensors"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    pytest.importorskip("setuptools")  # built without isolation: nothing is downloaded
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True, timeout=300)
    return next(out.glob("paperlib-*.whl"))


def test_the_wheel_ships_the_mini_assets(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for path in SHIPPED + ["paperlib/store/run_folder.py", "paperlib/study/evidence/tables.py", "paperlib/nets/songunet.py"]:
        assert path in names, path
    assert not [n for n in names if n.startswith(("tests/", "notebooks/", "results/"))]


def test_an_installed_copy_finds_its_files_from_another_folder(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    probe = ("import paperlib, pathlib; from paperlib.presets import preset_config; "
             "from paperlib.metrics import DigitsExtractor; from paperlib.store.checkpoints import load_network; "
             "cfg = preset_config('digits-gddi'); load_network(cfg.teacher); DigitsExtractor(); "
             "print(pathlib.Path(paperlib.__file__).parent)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(target)},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == str(target / "paperlib")  # the installed copy, not the checkout


def test_environment_yml_lists_pyprojects_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    conda_names = {"torch": "pytorch"}  # conda's name for the same package
    env = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    pip_section = next(d["pip"] for d in env if isinstance(d, dict))
    listed = {re.split(r"[<>=]", d)[0]: d for d in env if isinstance(d, str) and d not in ("pip",)}
    listed.update({re.split(r"[<>=]", d)[0]: d for d in pip_section if not d.startswith("-e")})
    listed.pop("python")
    expected = {}
    for dep in wanted:
        name = re.split(r"[<>=]", dep)[0]
        expected[conda_names.get(name, name)] = conda_names.get(name, name) + dep[len(name):]
    assert listed == expected

"""The FID table at smoke scale: every row trained and evaluated for real, then written as JSON and markdown."""

import json

import numpy as np

from paperlib.__main__ import main


def test_smoke_table_end_to_end(tmp_path, capsys):
    args = ["table", "--dataset", "digits", "--scale", "smoke", "--runs", str(tmp_path / "runs"),
            "--results", str(tmp_path / "results"), "--figures", str(tmp_path / "figures")]
    assert main(args) == 0
    table = json.loads((tmp_path / "results" / "digits" / "smoke" / "table.json").read_text())
    names = [r["row"] for r in table["rows"]]
    assert names[:6] == [f"teacher, Heun NFE {n}" for n in (1, 3, 5, 9, 17, 35)]
    assert names[6:9] == ["GDD (NFE 1)", "GDD-I (NFE 1)", "instance distillation (NFE 1)"]
    for row in table["rows"]:
        assert all(np.isfinite(row[k]) for k in ("fid", "kid", "precision", "recall"))
    students = {r["row"]: r for r in table["rows"][6:9]}
    assert students["GDD-I (NFE 1)"]["frozen_fraction"] > 0.5 and students["GDD (NFE 1)"]["frozen_fraction"] == 0
    assert len({r["kimg"] for r in students.values()}) == 1  # the same image budget for every student
    markdown = (tmp_path / "figures" / "table_digits_smoke.md").read_text()
    assert "| GDD-I (NFE 1) |" in markdown and markdown in capsys.readouterr().out
    for name in ("samples_digits_smoke_teacher-nfe35.png", "samples_digits_smoke_gdd-i.png", "nearest_digits_smoke_gddi.png"):
        assert (tmp_path / "figures" / name).stat().st_size > 0


def test_table_rejects_unknown_dataset_and_scale():
    import pytest

    from paperlib.tables import build_table

    with pytest.raises(ValueError, match="'cifar10' has no smoke table"):
        build_table("cifar10", "smoke")
    with pytest.raises(ValueError, match="scale 'paper'"):
        build_table("digits", "paper")

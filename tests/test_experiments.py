"""Experiment drivers: train-then-evaluate with an FID callback, learning-rate sweeps, the teacher's NFE curve."""

import json

import pytest

from paperlib.__main__ import main
from paperlib.checkpoints import load_network
from paperlib.experiments import best_snapshot, lr_sweep, teacher_nfe_curve, train_and_evaluate
from paperlib.metrics import DigitsExtractor, digits_reference


@pytest.fixture(scope="module")
def ref():
    ext = DigitsExtractor()
    return ext, digits_reference(ext)


def test_train_and_evaluate_records_fid_during_training(tmp_path, smoke_teacher, ref):
    ext, reference = ref
    result = train_and_evaluate("smoke-gddi", str(tmp_path / "run"), ext, reference, eval_num=100, fid_every_kimg=0.16,
                                teacher=smoke_teacher)
    assert result["nfe"] == 1 and result["kimg"] >= 0.32 and 0.5 < result["frozen_fraction"] < 0.9
    lines = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert sum("eval_fid" in l for l in lines) == 2
    assert 0 < lines[0]["train_seconds"] < lines[-1]["train_seconds"] <= result["train_seconds"]
    assert len(list((tmp_path / "run" / "progress").glob("kimg-*.npz"))) == 2  # sample grids over training
    assert json.loads((tmp_path / "run" / "result.json").read_text())["fid"] == result["fid"]
    log = (tmp_path / "run" / "metrics.jsonl").read_text()
    written = (tmp_path / "run" / "network.safetensors").stat().st_mtime_ns
    again = train_and_evaluate("smoke-gddi", str(tmp_path / "run"), ext, reference, eval_num=100, teacher=smoke_teacher)
    assert again["fid"] == pytest.approx(result["fid"])
    # a finished run is resumed, not retrained: no iteration ran, so its log and network were not written again
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == log
    assert (tmp_path / "run" / "network.safetensors").stat().st_mtime_ns == written


def test_lr_sweep_and_teacher_curve(tmp_path, smoke_teacher, ref):
    ext, reference = ref
    results = lr_sweep("smoke-gdd", [1e-4, 1e-3], str(tmp_path), ext, reference, eval_num=100, teacher=smoke_teacher,
                       total_kimg=0.16)
    assert [r["fid"] for r in results] == sorted(r["fid"] for r in results)
    assert {r["overrides"]["lr"] for r in results} == {1e-4, 1e-3}
    curve = teacher_nfe_curve(smoke_teacher, ext, reference, steps=(1, 2), eval_num=100)
    assert [c["nfe"] for c in curve] == [1, 3]


def test_sweep_command(tmp_path, smoke_teacher, capsys):
    assert main(["sweep", "--preset", "smoke-gdd", "--lrs", "1e-4", "--root", str(tmp_path), "--eval-num", "100",
                 "--out", str(tmp_path / "s.json"), "--teacher", smoke_teacher, "--total_kimg", "0.16"]) == 0
    assert "lr 0.0001: FID" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "s.json").read_text())) == 1


def test_train_command_scores_every_snapshot(tmp_path, smoke_teacher, capsys):
    """Paper scale scores the EMA at every snapshot (the authors released their lowest-FID snapshots); here with the
    digits features instead of Inception. A resumed run keeps the scores it logged before."""
    run = tmp_path / "run"
    args = ["train", "--preset", "smoke-gdd", "--run-dir", str(run), "--teacher", smoke_teacher, "--no-progress",
            "--eval-ref", "digits-8:train", "--eval-features", "digits", "--eval-num", "100", "--resume"]
    assert main([*args, "--total_kimg", "0.16"]) == 0
    assert main([*args, "--total_kimg", "0.32"]) == 0
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    scored = [l for l in lines if "eval_fid" in l]
    assert [l["kimg"] for l in scored] == [0.16, 0.32] and all(l["eval_num"] == 100 for l in scored)
    best = best_snapshot(run)
    assert best["fid"] == min(l["eval_fid"] for l in scored)
    assert load_network(best["checkpoint"]).img_resolution == 8  # the snapshot it names exists
    assert best_snapshot(tmp_path) is None  # no log, no best snapshot

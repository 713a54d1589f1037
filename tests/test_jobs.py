"""A study's jobs: train-then-evaluate with an FID callback, many runs in a pool, a study stopped by SIGTERM."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from paperlib.__main__ import main
from paperlib.evaluation import best_snapshot
from paperlib.metrics import DigitsExtractor, digits_reference
from paperlib.presets import preset_config
from paperlib.store.checkpoints import load_network
from paperlib.study.jobs import Job, cached_result, run_job, train_and_evaluate
from paperlib.study.pool import run_jobs
from paperlib.training import train


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
    # the discriminator's view is logged beside each FID and leaves the run exactly as it was without it
    scored = [line for line in lines if "eval_fid" in line]
    assert all(0 <= line[k] <= 1 for line in scored for k in ("eval_d_accuracy_real", "eval_d_accuracy_fake"))
    assert set(result["curve"]) >= {"d_logit_real", "d_logit_fake"} and len(result["curve"]["d_logit_real"]) == 2
    train(preset_config("smoke-gddi", run_dir=str(tmp_path / "plain"), teacher=smoke_teacher), progress=False)
    plain, viewed = (load_file(str(tmp_path / d / "network.safetensors")) for d in ("plain", "run"))
    assert plain.keys() == viewed.keys() and all(torch.equal(plain[k], viewed[k]) for k in plain)




def test_pool_results_do_not_depend_on_the_worker(tmp_path, smoke_teacher):
    """Two runs on two worker processes (one thread each) give the numbers of the same runs trained here, in the
    order of the jobs; a finished run's result is read back, not evaluated again."""
    import torch

    jobs = [Job(f"s{seed}", "smoke-gdd", str(tmp_path / f"pool{seed}"), dict(teacher=smoke_teacher, seed=seed,
                                                                            total_kimg=0.16), eval_num=100)
            for seed in (1, 2)]
    pooled = run_jobs(jobs, workers=2, log=lambda line: None)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        here = [run_job(Job(j.label, j.preset, j.run_dir.replace("pool", "here"), j.overrides, eval_num=100))
                for j in jobs]
    finally:
        torch.set_num_threads(threads)
    assert [r["fid"] for r in pooled] == [r["fid"] for r in here] and pooled[0]["fid"] != pooled[1]["fid"]
    assert [r["seed"] for r in pooled] == [1, 2]
    assert cached_result("smoke-gdd", jobs[0].run_dir, 100, **jobs[0].overrides)["fid"] == pooled[0]["fid"]
    assert cached_result("smoke-gdd", jobs[0].run_dir, 200, **jobs[0].overrides) is None  # another sample count
    assert cached_result("smoke-gdd", jobs[0].run_dir, 100, **dict(jobs[0].overrides, lr=1e-3)) is None
    result_file = Path(jobs[0].run_dir) / "result.json"  # made from a checkout since moved: its teacher path is gone
    result = json.loads(result_file.read_text())
    result["config"]["teacher"] = str(tmp_path / "moved-away" / "teacher.safetensors")
    result_file.write_text(json.dumps(result))
    assert cached_result("smoke-gdd", jobs[0].run_dir, 100, **jobs[0].overrides)["fid"] == pooled[0]["fid"]
    # past the deadline no job starts, however the executor queued it
    late = [Job(f"s{seed}", "smoke-gdd", str(tmp_path / f"pool{seed}"), dict(jobs[0].overrides, seed=seed), eval_num=100)
            for seed in (3, 4)]
    lines = []
    assert run_jobs(late, workers=2, log=lines.append, deadline=time.time() - 1) == [None, None]
    assert lines == ["deadline reached: 2 runs not started"]
    assert not (tmp_path / "pool3").exists() and not (tmp_path / "pool4").exists()


def test_running_jobs_report_their_latest_fid_during_training(tmp_path):
    """Between finished runs the pool prints each running run's newest FID during training, read from its log; a
    line still being written is skipped, and so is the log of a finished run that is only read back."""
    from paperlib.study.pool import _latest_training_fid

    assert _latest_training_fid(str(tmp_path)) is None  # not started
    lines = [dict(kimg=4.0, loss_G=1.0), dict(kimg=8.0, eval_fid=60.5, train_seconds=100.0), dict(kimg=12.0)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + '\n{"kimg": 16.0, "eval_')
    assert _latest_training_fid(str(tmp_path)) == lines[1]
    assert _latest_training_fid(str(tmp_path), since=time.time() + 60) is None  # an old log: a finished run


def test_pool_stops_at_the_first_failed_run(tmp_path):
    jobs = [Job("bad", "smoke-gdd", str(tmp_path / f"bad{k}"), dict(teacher=str(tmp_path / "missing.safetensors")))
            for k in range(2)]
    with pytest.raises(Exception, match="missing.safetensors"):
        run_jobs(jobs, workers=2, log=lambda line: None)


def _live_stat(pid) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, parent pid, ...), or None once the process has
    exited: gone, or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if stat[0] == "Z" else stat


def _alive(pid) -> bool:
    return _live_stat(pid) is not None


def _live_children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` and that have not exited."""
    return [int(p.name) for p in Path("/proc").glob("[0-9]*")
            if (stat := _live_stat(p.name)) is not None and int(stat[1]) == pid]


def test_sigterm_stops_a_study_and_its_workers(tmp_path, smoke_teacher):
    """``kill PID`` on a pooled study stops its spawned workers too, which would otherwise train on with no parent to
    read their results; the study exits as a SIGTERM would end it (status 143)."""
    script = tmp_path / "study.py"
    script.write_text(
        "from paperlib.study.jobs import Job\nfrom paperlib.study.pool import run_jobs\n"
        "if __name__ == '__main__':\n"
        f"    jobs = [Job(str(seed), 'smoke-gdd', {str(tmp_path)!r} + f'/run{{seed}}', "
        f"dict(teacher={smoke_teacher!r}, seed=seed, total_kimg=1000.0)) for seed in (1, 2)]\n"
        "    run_jobs(jobs, workers=2, poll_seconds=0.2)\n")
    root, log = Path(__file__).resolve().parents[1], tmp_path / "study.log"
    with log.open("w") as out:  # a file, not a pipe: orphaned workers would hold a pipe open
        proc = subprocess.Popen([sys.executable, str(script)], env=dict(os.environ, PYTHONPATH=str(root)),
                                stdout=out, stderr=out)
    workers = []
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not all(
                list((tmp_path / f"run{seed}").glob("metrics.jsonl")) for seed in (1, 2)):
            time.sleep(0.1)
        assert proc.poll() is None, log.read_text()
        workers = _live_children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143, log.read_text()
        deadline = time.time() + 30
        while any(_alive(pid) for pid in workers) and time.time() < deadline:
            time.sleep(0.1)
        assert len(workers) >= 2 and not any(_alive(pid) for pid in workers)
    finally:  # leave no process behind, whatever failed
        for pid in [proc.pid, *workers]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


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




def test_run_command_refuses_unknown_studies_and_datasets(capsys):
    assert main(["run", "evidence,tables"]) == 2
    assert "error: unknown studies ['tables']; expected some of rates, evidence, freeze-rates" in capsys.readouterr().err
    assert main(["run", "evidence", "--datasets", "mnist"]) == 2
    assert "error: datasets ['mnist']: expected some of digits, digits-cond" in capsys.readouterr().err


def test_run_command_rebuilds_a_study_from_the_ledger_without_training(tmp_path, capsys, monkeypatch):
    """The committed records of the rate sweeps are enough to choose and write the tables' rates again."""
    import shutil

    from paperlib.assets import ROOT
    from paperlib.study import pool

    results = tmp_path / "results"
    shutil.copytree(ROOT / "results" / "ledger", results / "ledger")
    monkeypatch.setattr(pool, "run_job", lambda job: pytest.fail(f"{job.label} was trained"))
    assert main(["run", "rates", "--datasets", "digits,digits-cond", "--runs", str(tmp_path / "runs"), "--results",
                 str(results), "--figures", str(tmp_path / "figures"), "--workers", "1"]) == 0
    assert "study rates: written" in capsys.readouterr().out
    for dataset in ("digits", "digits-cond"):
        path = Path("results") / "evidence" / dataset / "rates.json"
        assert (tmp_path / path).read_bytes() == (ROOT / path).read_bytes()

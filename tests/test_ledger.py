"""The ledger of run records: written by every finished run, read instead of retraining, refused when it holds
another config or mixes protocol versions, and enough to rebuild the committed tables without any run folder."""

import json
import shutil
from pathlib import Path

import pytest

from paperlib import ledger, pool
from paperlib.study.ledger import LedgerError, record_path
from paperlib.study.protocol import VERSION
from paperlib.store.run_folder import RunError, RunFolder, read_log
from paperlib.study.registry import Options, check_records
from paperlib.study.tables.build import TableRequest, build_table

ROOT = Path(__file__).resolve().parent.parent


def test_a_smoke_table_records_its_runs_and_is_rebuilt_from_the_records_alone(tmp_path, monkeypatch):
    request = dict(dataset="digits", scale="smoke", methods=["gdd"], runs=str(tmp_path / "runs"),
                   results=str(tmp_path / "results"), figures=str(tmp_path / "figures"), workers=1)
    first = build_table(TableRequest(**request))
    path = record_path(tmp_path / "results" / "ledger", "smoke/digits/smoke-gdd/seed1")
    record = json.loads(path.read_text())
    assert record["protocol"] == VERSION and record["evaluation"]["latents"] == [0, 99]
    assert record["config"]["teacher"].startswith("weights:") and "run_dir" not in record["config"]
    assert record["machine"]["cpu_capability"] and record["machine"]["threads"] >= 1 and record["code"]
    assert record["curve"]["num"] == 100 and len(record["curve"]["kimg"]) == len(record["curve"]["fid"]) == 2
    teacher = record_path(tmp_path / "results" / "ledger", "smoke/digits/teacher/nfe35")
    assert json.loads(teacher.read_text())["ranges"][0]["latents"] == [0, 99]

    options = Options(scale="smoke", runs=request["runs"], results=request["results"], workers=1)
    assert check_records(options, ("smoke/digits/smoke-gdd/seed1",))["passed"]  # retrained: bit for bit
    tampered = dict(record, evaluation=dict(record["evaluation"], fid=record["evaluation"]["fid"] + 1e-9))
    path.write_text(json.dumps(tampered))
    report = check_records(options, ("smoke/digits/smoke-gdd/seed1",))
    assert not report["passed"] and report["checks"][0]["rule"] == "bit for bit"
    assert [k for k, m in report["checks"][0]["metrics"].items() if not m["ok"]] == ["fid"]
    path.write_text(json.dumps(record))

    shutil.rmtree(tmp_path / "runs" / "smoke" / "digits" / "smoke-gdd")  # the runs are gone, the records stay
    monkeypatch.setattr(pool, "run_job", lambda job: pytest.fail(f"{job.label} was trained again"))
    again = build_table(TableRequest(**request))
    assert [r.get("fid_runs") for r in again["rows"]] == [r.get("fid_runs") for r in first["rows"]]
    assert again["rows"][6]["curve"] == first["rows"][6]["curve"]

    record["config"]["lr"], record["config_hash"] = 0.5, "edited"  # another config under the run's name
    path.write_text(json.dumps(record))
    with pytest.raises(LedgerError, match=r"seed1.json holds this run with another config \(lr: 0.5 -> "):
        build_table(TableRequest(**request))


def test_a_table_never_mixes_protocol_versions(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(ROOT / "results" / "ledger", results / "ledger")
    path = record_path(results / "ledger", "mini/digits/digits-gdd/seed2")
    path.write_text(json.dumps(dict(json.loads(path.read_text()), protocol="0123456789ab")))
    with pytest.raises(LedgerError, match=r"the digits mini table would mix records of protocol versions"):
        build_table(TableRequest(dataset="digits", scale="mini", runs=str(tmp_path / "runs"), results=str(results),
                                 figures=str(tmp_path / "figures"), workers=1))


def test_the_committed_ledger_rebuilds_the_committed_table(tmp_path, assert_same_table_rows):
    results = tmp_path / "results"
    shutil.copytree(ROOT / "results" / "ledger", results / "ledger")
    table = build_table(TableRequest(dataset="digits", scale="mini", runs=str(tmp_path / "runs"), results=str(results),
                                     figures=str(tmp_path / "figures"), workers=1))
    committed = json.loads((ROOT / "results" / "digits" / "mini" / "table.json").read_text())
    assert_same_table_rows(table["rows"], committed["rows"])
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("network.safetensors"))


def test_one_reader_of_the_log_and_every_file_name_in_one_place(tmp_path, capsys):
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    folder.log.write_text('{"nimg": 16, "eval_fid": 3.0, "kimg": 0.016}\n{"nimg": 32, "ev')
    assert folder.records() == [{"nimg": 16, "eval_fid": 3.0, "kimg": 0.016}]  # a live run's last line: skipped
    assert folder.log.read_text().endswith('"ev') and capsys.readouterr().out == ""  # and the file left alone
    assert read_log(folder.log) == folder.records() and folder.log.read_text().endswith("}\n")  # the writer repairs
    folder.log.write_text('{"nimg": 16}\n[1, 2]\n')
    with pytest.raises(RunError, match="line 2: a JSON list, not a record"):
        folder.records()
    assert folder.snapshot(320).name == "network-snapshot-000000320.safetensors"
    assert folder.state(320).name == "training-state-000000320.pt" and folder.network.name == "network.safetensors"
    sources = "".join(p.read_text() for p in (ROOT / "paperlib").rglob("*.py") if p.name != "rundir.py")
    for name in ('"metrics.jsonl"', '"result.json"', '"config.json"', "network-snapshot-{", "training-state-{"):
        assert name not in sources, f"{name} is spelled outside paperlib.store.run_folder"


def test_teacher_identity_is_the_weights_not_the_file(tmp_path, smoke_teacher):
    from paperlib.store.checkpoints import load_network, save_network

    moved = save_network(load_network(smoke_teacher), tmp_path / "elsewhere.safetensors", extra=dict(note="re-saved"))
    assert Path(moved).read_bytes() != Path(smoke_teacher).read_bytes()
    assert ledger.teacher_identity(str(moved)) == ledger.teacher_identity(smoke_teacher)


def test_the_committed_ledger_rebuilds_the_sweeps_and_the_freeze_ablation(tmp_path, monkeypatch):
    from paperlib.study.report import ablation_markdown, sweep_markdown
    from paperlib.study.registry import run_studies

    results = tmp_path / "results"
    shutil.copytree(ROOT / "results", results)
    for path in (*(results / "mini").glob("sweep-*.json"), results / "digits" / "mini" / "freeze_ablation.json"):
        path.unlink()  # made again from the records alone
    monkeypatch.setattr(pool, "run_job", lambda job: pytest.fail(f"{job.label} was trained"))
    common = dict(runs=str(tmp_path / "runs"), results=str(results), figures=str(tmp_path / "figures"), workers=1)
    assert run_studies(["sweep"], Options(datasets=("digits", "digits-cond"), kimg=16, **common)) == ["sweep"]
    assert run_studies(["ablation"], Options(**common)) == ["ablation"]
    assert sweep_markdown(results / "mini") == sweep_markdown(ROOT / "results" / "mini")
    assert ablation_markdown(results) == ablation_markdown(ROOT / "results")

"""The ledger of run records: written by every finished run, read instead of retraining, refused when it holds
another config or mixes protocol versions, retrained and compared by the mini check, and enough to rebuild every
committed protocol file byte for byte without any run folder."""

import json
import shutil
from pathlib import Path

import pytest

from paperlib.metrics import DIGITS_FEATNET
from paperlib.store.files import file_sha256
from paperlib.store.run_folder import RunError, RunFolder, read_log
from paperlib.study import pool
from paperlib.study.check import check_records
from paperlib.study.jobs import Job, run_job
from paperlib.study.ledger import LedgerError, config_hash, record_path, write_record

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    """Every protocol study summarised again from a copy of the committed ledger and rates alone (nothing may train):
    the copy's root, with results/, figures/ and runs/."""
    from paperlib.study.registry import Options, run_studies

    root = tmp_path_factory.mktemp("rebuilt")
    shutil.copytree(ROOT / "results" / "ledger", root / "results" / "ledger")
    for rates in (ROOT / "results" / "evidence").glob("*/*rates.json"):  # chosen by the pilots, kept as committed
        (root / rates.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(rates, root / rates.relative_to(ROOT))
    real_run_job = pool.run_job
    pool.run_job = lambda job: pytest.fail(f"{job.label} was trained")
    try:
        options = Options(datasets=("digits", "digits-cond"), runs=str(root / "runs"), results=str(root / "results"),
                          figures=str(root / "figures"), workers=1)
        studies = ["rates", "evidence", "freeze-rates", "freeze-evidence"]
        assert run_studies(studies, options) == studies
    finally:
        pool.run_job = real_run_job
    return root


def test_the_committed_ledger_rebuilds_every_committed_protocol_file_byte_for_byte(rebuilt):
    committed = sorted(p.relative_to(ROOT) for p in (ROOT / "results" / "evidence").rglob("*.json"))
    assert committed == sorted(p.relative_to(rebuilt) for p in (rebuilt / "results" / "evidence").rglob("*.json"))
    for path in committed:
        assert (rebuilt / path).read_bytes() == (ROOT / path).read_bytes(), path
    for name in ("curves", "discriminator"):  # the copy figures need the networks, which a ledger does not hold
        for dataset in ("digits", "digits-cond"):
            figure = Path("figures") / f"evidence_{name}_{dataset}.png"
            assert (rebuilt / figure).read_bytes() == (ROOT / figure).read_bytes(), figure
    assert not (rebuilt / "runs").exists() or not any((rebuilt / "runs").rglob("network.safetensors"))


def test_a_table_never_mixes_protocol_versions(rebuilt):
    from paperlib.study.evidence.tables import assemble_evidence_table

    path = record_path(rebuilt / "results" / "ledger", "evidence/digits/table/gdd-lr0.0003/seed2")
    committed = path.read_bytes()
    write_record(rebuilt / "results" / "ledger", dict(json.loads(committed), protocol="0123456789ab"))
    try:
        with pytest.raises(LedgerError, match=r"the digits evidence table would mix records of protocol versions"):
            assemble_evidence_table("digits", str(rebuilt / "results"))
    finally:
        path.write_bytes(committed)


def test_the_check_retrains_a_record_bit_for_bit_and_names_what_differs(tmp_path, smoke_teacher):
    ledger = tmp_path / "results" / "ledger"
    job = Job("smoke", "smoke-gdd", str(tmp_path / "runs" / "one"), dict(teacher=smoke_teacher, total_kimg=0.16),
              eval_num=100, ledger=str(ledger), record="evidence/x/row/seed1", protocol="test-v")
    run_job(job)
    path = record_path(ledger, job.record)
    record = json.loads(path.read_text())
    assert record["config"]["teacher"].startswith("weights:") and "run_dir" not in record["config"]
    assert record["machine"]["cpu_capability"] and record["machine"]["threads"] >= 1 and record["code"]
    # where it trained, whether it resumed, and what it evaluated, each by its digest
    assert [p["from_kimg"] for p in record["trained"]] == [0] and record["resumed_at_kimg"] == []
    assert record["trained"][0]["machine"] == record["machine"] and record["trained"][0]["code"] == record["code"]
    assert record["digests"]["network"] == file_sha256(RunFolder(job.run_dir).network)
    assert record["digests"]["features"] == file_sha256(DIGITS_FEATNET) and len(record["digests"]["samples"]) == 64
    assert record["digests"]["bank"] is None
    common = dict(runs=str(tmp_path / "runs"), results=str(tmp_path / "results"), workers=1, names=(job.record,),
                  jobs={job.record: job})
    report = check_records(**common)
    assert report["passed"] and report["checks"][0]["rule"] == "bit for bit"  # retrained in runs/check/, not read
    assert set(report["checks"][0]["digests"]) == {"network", "samples"}
    assert json.loads((tmp_path / "results" / "evidence" / "check.json").read_text())["passed"]
    # a record that says another FID and another network (written as a record is, with its digest): both named
    write_record(ledger, dict(record, evaluation=dict(record["evaluation"], fid=record["evaluation"]["fid"] + 1e-9),
                              digests=dict(record["digests"], network="0" * 64)))
    report = check_records(**common)
    assert not report["passed"] and [k for k, m in report["checks"][0]["metrics"].items() if not m["ok"]] == ["fid"]
    assert [k for k, d in report["checks"][0]["digests"].items() if not d["ok"]] == ["network"]
    record["config"]["lr"] = 0.5  # another config under the run's name
    write_record(ledger, dict(record, config_hash=config_hash(record["config"])))
    with pytest.raises(LedgerError, match=r"seed1.json holds this run with another config \(lr: 0.5 -> "):
        run_job(job)


def test_one_reader_of_the_log_and_every_file_name_in_one_place(tmp_path, capsys):
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    folder.log.write_text('{"nimg": 16, "eval_fid": 3.0, "kimg": 0.016}\n{"nimg": 32, "ev')
    assert folder.records() == [{"nimg": 16, "eval_fid": 3.0, "kimg": 0.016}]  # a live run's last line: skipped
    assert folder.log.read_text().endswith('"ev') and capsys.readouterr().out == ""  # and the file left alone
    assert read_log(folder.log) == folder.records() and folder.log.read_text().endswith("}\n")  # the writer repairs
    assert folder.curve() == dict(kimg=[0.016], fid=[3.0])
    folder.log.write_text('{"nimg": 16}\n[1, 2]\n')
    with pytest.raises(RunError, match="line 2: a JSON list, not a record"):
        folder.records()
    assert folder.snapshot(320).name == "network-snapshot-000000320.safetensors"
    assert folder.state(320).name == "training-state-000000320.pt" and folder.network.name == "network.safetensors"
    sources = "".join(p.read_text() for p in (ROOT / "paperlib").rglob("*.py") if p.name != "run_folder.py")
    for name in ('"metrics.jsonl"', '"result.json"', '"config.json"', "network-snapshot-{", "training-state-{"):
        assert name not in sources, f"{name} is spelled outside paperlib.store.run_folder"


def test_teacher_identity_is_the_weights_not_the_file(tmp_path, smoke_teacher):
    from paperlib.store.checkpoints import load_network, save_network, weights_identity

    moved = save_network(load_network(smoke_teacher), tmp_path / "elsewhere.safetensors", extra=dict(note="re-saved"))
    assert Path(moved).read_bytes() != Path(smoke_teacher).read_bytes()
    assert weights_identity(str(moved)) == weights_identity(smoke_teacher)


def test_the_default_check_samples_one_evidence_run_per_method_and_dataset_made_here_where_it_can():
    from paperlib.study.check import evidence_sample, same_machine
    from paperlib.study.ledger import read_record

    ledger = ROOT / "results" / "ledger"
    names = evidence_sample(str(ROOT / "results"))
    assert len(names) == 8 and len({n.rsplit("/", 1)[0] for n in names}) == 8  # 4 methods x 2 datasets
    method = lambda name: name.split("/")[3].rsplit("-lr", 1)[0]  # noqa: E731
    assert evidence_sample(str(ROOT / "results"), ("gdd", "gddi")) == tuple(n for n in names if method(n) in ("gdd", "gddi"))
    for name in names:
        row = sorted(ledger.glob(name.rsplit("/", 1)[0] + "/seed*.json"))
        here = [p for p in row if same_machine(json.loads(p.read_text()), keys=("cpu", "cpu_capability"))]
        chosen = read_record(ledger, name)
        assert same_machine(chosen, keys=("cpu", "cpu_capability")) == bool(here)  # made here whenever a seed was

"""Hostile files and folders: each input a careless user or an attacker can hand paperlib, built here, and refused or
bounded before memory is spent, in one line naming the file, with nothing the user had lost."""

import io
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from edm_pickle import Persistent, _fake_torch_utils
from PIL import Image

from paperlib import data, metrics
from paperlib.__main__ import main
from paperlib.data import DatasetError, open_dataset
from paperlib.instance_bank import load_or_build_bank
from paperlib.metrics import MetricError, Stats
from paperlib.presets import preset_config
from paperlib.store import checkpoints
from paperlib.store.checkpoints import CheckpointError, load_network, read_network_file, save_network
from paperlib.store.integrity import content_digest
from paperlib.store.run_folder import RunError, lock_run_dir, read_log
from paperlib.study.jobs import Job
from paperlib.training import train

ROOT = Path(__file__).resolve().parent.parent


def run_main(capsys, *args) -> tuple[int, str]:
    """``python -m paperlib ARGS`` in this process: (exit code, stderr)."""
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's own exits
        code = exc.code
    return code, capsys.readouterr().err


def one_line(code: int, err: str, *expected: str, status: int = 2) -> str:
    lines = [l for l in err.splitlines() if l.strip()]
    assert code == status and len(lines) == 1, err
    assert "Traceback" not in err and "usage:" not in err, err
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def smoke(run_dir, teacher, **overrides):
    return preset_config("smoke-gdd", run_dir=str(run_dir), teacher=teacher, **overrides)


# 1. A pickle whose modules share children: linear work, refused.
def test_a_pickle_of_shared_modules_is_refused_without_walking_every_path(tmp_path):
    node = Persistent("Linear", dict(_parameters={"weight": torch.zeros(1)}, _buffers={}, _modules={}))
    for _ in range(40):  # 2^40 paths through 41 objects
        node = Persistent("UNetBlock", dict(_parameters={}, _buffers={}, _modules={"a": node, "b": node}))
    root = Persistent("EDMPrecond", dict(_init_kwargs=dict(img_resolution=8, img_channels=1), _parameters={},
                                         _buffers={}, _modules={"model": node}))
    path = tmp_path / "dag.pkl"
    with _fake_torch_utils():
        path.write_bytes(__import__("pickle").dumps(dict(ema=root), protocol=4))
    assert path.stat().st_size < 4000
    with pytest.raises(CheckpointError, match=r"dag.pkl: module model\.[ab.]+ is the same object as model\.[ab.]+"):
        load_network(path)


# 2. Integrity over everything a run reads back.
def test_an_edited_network_header_is_found(tmp_path, smoke_teacher):
    path = tmp_path / "net.safetensors"
    save_network(load_network(smoke_teacher), path)
    raw = path.read_bytes()
    assert raw.count(b'\\"sigma_data\\": 0.5') == 1
    path.write_bytes(raw.replace(b'\\"sigma_data\\": 0.5', b'\\"sigma_data\\": 0.7'))  # same length
    with pytest.raises(CheckpointError, match="net.safetensors: its config or weights do not match the digest"):
        load_network(path)
    legacy = tmp_path / "legacy.safetensors"  # a file without the digest: refused, and --trust re-saves it
    config, tensors = read_network_file(smoke_teacher)
    from safetensors.torch import save_file
    save_file(tensors, str(legacy), metadata={"paperlib": json.dumps({k: v for k, v in config.items() if k != "digest"})})
    with pytest.raises(CheckpointError, match="legacy.safetensors: carries no digest .* --trust"):
        load_network(legacy)
    assert main(["convert", str(legacy), str(tmp_path / "resealed.safetensors"), "--trust"]) == 0
    assert read_network_file(tmp_path / "resealed.safetensors")[0]["extra"] == config["extra"]


def test_an_edited_training_state_is_refused_and_the_state_says_what_the_run_is(tmp_path, smoke_teacher):
    run = tmp_path / "run"
    train(smoke(run, smoke_teacher, total_kimg=0.064, snapshot_kimg=0.032, keep_states=1), progress=False)
    (state_path,) = run.glob("training-state-*.pt")
    state = torch.load(state_path, weights_only=True)
    (run / "config.json").unlink()  # without config.json, the state's own config still decides
    with pytest.raises(RunError, match=r"holds a different run \(by its training state\).*batch: 16 -> 32.*lr: "):
        train(smoke(run, smoke_teacher, total_kimg=0.128, lr=0.05, batch=32), resume=True, progress=False)
    assert not (run / "config.json").exists()  # refused before anything was written
    state["optimizers"]["G"]["adam"]["param_groups"][0]["lr"] = 0.1  # the digest left as it was
    torch.save(state, state_path)
    with pytest.raises(RunError, match="no training state in .* loads"):
        train(smoke(run, smoke_teacher, total_kimg=0.128), resume=True, progress=False)
    assert state_path.exists()  # kept on disk


# 3. No writes through planted links; only paperlib's own temporary files are cleaned up.
def test_a_planted_lock_link_is_refused_and_only_paperlibs_temp_files_are_removed(tmp_path, smoke_teacher, capsys):
    run, victim = tmp_path / "run", tmp_path / "victim.txt"
    run.mkdir()
    victim.write_text("precious")
    (run / ".lock").symlink_to(victim)
    with pytest.raises(OSError, match="is a symbolic link, which paperlib does not write through"):
        lock_run_dir(run)
    assert victim.read_text() == "precious"
    (run / ".lock").unlink()
    train(smoke(run, smoke_teacher, total_kimg=0.032), progress=False)
    (run / ".notes.tmp").write_text("user file")
    (run / ".folder.tmp").mkdir()
    (run / ".x.abc.paperlib.tmp").mkdir()  # a folder with paperlib's pattern is not a leftover either
    (run / ".network.safetensors.k2j.paperlib.tmp").write_bytes(b"leftover")
    train(smoke(run, smoke_teacher, total_kimg=0.064), resume=True, progress=False)
    assert "removed .network.safetensors.k2j.paperlib.tmp" in capsys.readouterr().out
    assert (run / ".notes.tmp").read_text() == "user file" and (run / ".folder.tmp").is_dir()
    assert (run / ".x.abc.paperlib.tmp").is_dir() and not (run / ".network.safetensors.k2j.paperlib.tmp").exists()


# 4. Sizes checked before inflating or allocating.
def test_a_zip_member_that_inflates_past_the_limit_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "MAX_MEMBER_BYTES", 2 ** 20)
    png = io.BytesIO()
    Image.new("L", (8, 8)).save(png, format="png")
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("00000/img00000000.png", "w") as f:  # a PNG followed by 2 MiB of zeros, deflated to a few KB
            f.write(png.getvalue())
            f.write(bytes(2 ** 21))
    assert path.stat().st_size < 20_000
    with pytest.raises(DatasetError, match=r"bomb.zip/00000/img00000000.png: 2,097,\d+ bytes \(uncompressed\), above "
                                           r"the limit of 1,048,576"):
        open_dataset(path)


def write_npy_member(zf: zipfile.ZipFile, name: str, header: dict, payload: bytes) -> None:
    text = repr(header).encode()
    text += b" " * (63 - (len(text) + 10) % 64) + b"\n"
    zf.writestr(f"{name}.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload)


def test_statistics_that_claim_more_than_the_limit_or_hold_no_numbers_are_refused(tmp_path, monkeypatch):
    huge = tmp_path / "huge.npz"
    with zipfile.ZipFile(huge, "w") as zf:
        write_npy_member(zf, "mu", dict(descr="<f8", fortran_order=False, shape=(2,)), bytes(16))
        write_npy_member(zf, "sigma", dict(descr="<f8", fortran_order=False, shape=(2 ** 20, 2 ** 20)), bytes(16))
    with pytest.raises(MetricError, match=r"huge.npz: sigma claims 8,796,093,022,208 bytes, above the limit"):
        Stats.load(huge)
    monkeypatch.setattr(metrics, "MAX_NPZ_ARRAY_BYTES", 2 ** 16)
    deflated = tmp_path / "deflated.npz"
    np.savez_compressed(deflated, mu=np.zeros(200), sigma=np.zeros((200, 200)))  # 320 KB of zeros in ~1 KB
    with pytest.raises(MetricError, match=r"deflated.npz: sigma inflates to 320,\d+ bytes, above the limit of 65,536"):
        Stats.load(deflated)
    monkeypatch.undo()
    long_header = tmp_path / "long-header.npz"  # numpy would read the 4e9 header bytes a v2 header claims
    with zipfile.ZipFile(long_header, "w", zipfile.ZIP_DEFLATED) as zf:
        write_npy_member(zf, "mu", dict(descr="<f8", fortran_order=False, shape=(2,)), bytes(16))
        zf.writestr("sigma.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 4_000_000_000) + b" " * 2 ** 20)
    with pytest.raises(MetricError, match=r"long-header.npz: sigma's .npy header claims 4,000,000,000 bytes; at most"):
        Stats.load(long_header)
    short = tmp_path / "short.npz"
    with zipfile.ZipFile(short, "w") as zf:
        write_npy_member(zf, "mu", dict(descr="<f8", fortran_order=False, shape=(2,)), bytes(16))
        write_npy_member(zf, "sigma", dict(descr="<f8", fortran_order=False, shape=(2, 2)), bytes(8))
    with pytest.raises(MetricError, match="short.npz: sigma claims 32 bytes but its member holds"):
        Stats.load(short)
    nan = tmp_path / "nan.npz"
    np.savez(nan, mu=np.array([np.nan, 0.0]), sigma=np.eye(2))
    with pytest.raises(MetricError, match="nan.npz: mu or sigma holds NaN or infinite values"):
        Stats.load(nan)
    counted = tmp_path / "count.npz"
    np.savez(counted, mu=np.zeros(2), sigma=np.eye(2), count=np.arange(3))
    with pytest.raises(MetricError, match=r"count.npz: count is a int64 array of shape \[3\]; expected one whole"):
        Stats.load(counted)
    good = tmp_path / "good.npz"
    Stats(np.ones(2), np.eye(2), 7).save(good)
    loaded = Stats.load(good)
    assert loaded.count == 7 and np.array_equal(loaded.sigma, np.eye(2))


def test_images_are_sized_and_their_mode_checked_from_the_header_before_decoding(tmp_path, monkeypatch):
    def folder(name, *images):
        path = tmp_path / name
        path.mkdir()
        for i, image in enumerate(images):
            image.save(path / f"{i}.png")
        return path
    monkeypatch.setattr(data, "MAX_IMAGE_PIXELS", 100)
    decoded, real_load = [], Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self, *a: decoded.append(self.size) or real_load(self))
    large = folder("large", Image.new("L", (8, 8)), Image.new("L", (16, 16)))
    decoded.clear()  # (saving them loaded them)
    dataset = open_dataset(large)
    with pytest.raises(DatasetError, match=r"large/1.png: refused, the image is 16x16 pixels, above the limit of 100"):
        dataset.raw_image(1)
    assert (16, 16) not in decoded
    monkeypatch.undo()
    for mode, what in (("I;16", "16-bit"), ("1", "1-bit"), ("P", "palette"), ("RGBA", "alpha")):
        path = folder(f"mode-{what}", Image.new(mode, (8, 8)))
        with pytest.raises(DatasetError, match=rf"0.png: image mode '{re.escape(mode)}' is not supported; paperlib reads "
                                               r"8-bit grey \('L'\) and RGB"):
            open_dataset(path)
    assert open_dataset(folder("rgb", Image.new("RGB", (8, 8)))).num_channels == 3


def test_a_network_file_is_sized_on_the_meta_device_against_the_weights_it_holds(tmp_path, smoke_teacher, monkeypatch):
    config, tensors = read_network_file(smoke_teacher)
    config["init_kwargs"]["model_channels"] = 1024  # asks for ~7.6e8 parameters, under the 2e9 limit
    config["digest"] = checkpoints.network_digest(config, tensors)  # an attacker can recompute the digest
    from safetensors.torch import save_file
    path = tmp_path / "big.safetensors"
    save_file(tensors, str(path), metadata={"paperlib": json.dumps(config)})
    built_on = []
    real_build = checkpoints.build_network
    monkeypatch.setattr(checkpoints, "build_network",
                        lambda *a, **k: built_on.append(torch.empty(0).device.type) or real_build(*a, **k))
    with pytest.raises(CheckpointError, match=r"big.safetensors: .* has shape \[.*\]; expected \[.*\]"):
        load_network(path)
    assert built_on == ["meta"]  # never allocated for real


# 6. The instance bank is checked, and rebuilt when it fails.
def test_an_edited_wrong_or_truncated_instance_bank_is_rebuilt_never_used(tmp_path, smoke_teacher, capsys):
    teacher = load_network(smoke_teacher)
    built = load_or_build_bank(teacher, smoke_teacher, 8, 2, tmp_path, "cpu")
    path = built["path"]
    original = torch.load(path, weights_only=True)
    edits = {
        "its content does not match its digest": lambda bank: bank["target"].add_(1),
        r"its target is float32 \[4, 1, 8, 8\]; expected float32 \[8, 1, 8, 8\]":
            lambda bank: bank.update(target=bank["target"][:4], digest=content_digest(
                {k: (v[:4] if k == "target" else v) for k, v in bank.items() if k != "digest"})),
    }
    for why, edit in edits.items():
        bank = torch.load(path, weights_only=True)
        edit(bank)
        torch.save(bank, path)
        again = load_or_build_bank(teacher, smoke_teacher, 8, 2, tmp_path, "cpu")
        assert re.search(f"rebuilding .*{why}", capsys.readouterr().out)
        assert torch.equal(again["target"], built["target"])
    path.write_bytes(path.read_bytes()[:300])  # truncated
    again = load_or_build_bank(teacher, smoke_teacher, 8, 2, tmp_path, "cpu")
    assert "rebuilding" in capsys.readouterr().out and torch.equal(again["target"], original["target"])
    assert torch.equal(torch.load(path, weights_only=True)["target"], original["target"])


# 7. Tracebacks become one line.
def test_bad_values_and_files_are_one_line_errors(tmp_path, smoke_teacher, capsys, monkeypatch):
    base = ["train", "--preset", "smoke-gdd", "--teacher", smoke_teacher, "--run-dir", str(tmp_path / "r"),
            "--no-progress"]
    for key, value in (("total_kimg", "Infinity"), ("total_kimg", "1e400"), ("snapshot_kimg", "Infinity"),
                       ("lr", "Infinity")):
        one_line(*run_main(capsys, *base, f"--{key}", value), f"{key}: expected a finite number > 0 and <= 1,000,000,000,000, got inf")
    one_line(*run_main(capsys, *base, "--discriminator_kwargs", '{"channels": -1}'),
             "discriminator_kwargs {'channels': -1}: cannot build the 'small' discriminator")
    assert not (tmp_path / "r" / "network.safetensors").exists()
    for value in ("inf", "abc", "0"):
        monkeypatch.setenv("PAPERLIB_MAX_PARAMS", value)
        line = one_line(*run_main(capsys, "convert", smoke_teacher, str(tmp_path / "c")),
                        f"PAPERLIB_MAX_PARAMS={value!r}: expected a number of parameters")
        assert smoke_teacher not in line  # not blamed on the network file
    monkeypatch.delenv("PAPERLIB_MAX_PARAMS")
    fid = ["fid", "--ckpt", smoke_teacher, "--ref", "digits-8", "--num", "70", "--features", "digits", "--device", "cpu"]
    (tmp_path / "empty.safetensors").write_bytes(b"")
    one_line(*run_main(capsys, *fid, "--feature-weights", str(tmp_path / "empty.safetensors")),
             "empty.safetensors: not the weights of paperlib's digits feature net")
    one_line(*run_main(capsys, *fid, "--feature-weights", smoke_teacher),
             "network.safetensors: not the weights of paperlib's digits feature net")
    one_line(*run_main(capsys, "sample", "--ckpt", smoke_teacher, "--batch", "0", "--outdir", str(tmp_path / "o")),
             "argument --batch: expected an integer in [1, 10000000], got 0")
    one_line(*run_main(capsys, "fid", "--ckpt", smoke_teacher, "--ref", "digits-8", "--num", "-5"),
             "argument --num: expected an integer in [1, 10000000], got -5")
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"nimg": 16}\n42\n{"nimg": 32}\n')
    with pytest.raises(RunError, match=r"metrics.jsonl, line 2: a JSON int, not a record"):
        read_log(log)


def test_ctrl_c_prints_one_line_naming_the_state_to_resume_from(tmp_path, smoke_teacher):
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "paperlib", "train", "--preset", "smoke-gdd", "--teacher",
                             smoke_teacher, "--run-dir", str(run), "--total_kimg", "1000", "--snapshot_kimg", "0.016",
                             "--no-progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list(run.glob("training-state-*.pt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    line = one_line(proc.returncode, err, "interrupted: ", "is the newest training state; add --resume", status=130)
    assert Path(line.split("interrupted: ")[1].split(" is the newest")[0]).exists()


# 8. The NaN stop names a snapshot from before the non-finite steps; samples never mix with older ones.
def test_the_nan_stop_names_the_last_snapshot_before_the_non_finite_steps(tmp_path, smoke_teacher, monkeypatch):
    import paperlib.objectives as objectives_module

    calls, real_loss = [], objectives_module.generator_loss

    def loss_going_nan(logits_fake, kind="ns"):
        calls.append(1)
        return real_loss(logits_fake, kind) * (float("nan") if len(calls) > 3 else 1.0)
    monkeypatch.setattr(objectives_module, "generator_loss", loss_going_nan)
    run = tmp_path / "run"  # batch 16: snapshots every 2 steps, NaN from step 4 (nimg 64) on, stop after 5 in a row
    with pytest.raises(RunError, match="the last snapshot taken before the non-finite steps began is "
                                       r".*network-snapshot-000000032\.safetensors"):
        train(smoke(run, smoke_teacher, total_kimg=0.32, log_kimg=0.016, snapshot_kimg=0.032, max_nonfinite_steps=5),
              progress=False)
    assert (run / "network-snapshot-000000064.safetensors").exists()  # taken, but inside the streak


def test_sample_writes_into_an_empty_folder_and_overwrite_replaces_only_samples(tmp_path, smoke_teacher, capsys):
    out = tmp_path / "samples"
    sample = ["sample", "--ckpt", smoke_teacher, "--steps", "1", "--device", "cpu", "--outdir", str(out)]
    assert run_main(capsys, *sample, "--seeds", "0-5")[0] == 0
    one_line(*run_main(capsys, *sample, "--seeds", "0-1"), "holds 7 entries already", "--overwrite")
    assert run_main(capsys, *sample, "--seeds", "0-1", "--overwrite")[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["000000.png", "000001.png", "samples.npz"]
    (out / "notes.txt").write_text("mine")
    one_line(*run_main(capsys, *sample, "--seeds", "0-1", "--overwrite"), "also holds notes.txt; nothing was removed")
    assert (out / "notes.txt").read_text() == "mine" and (out / "000001.png").exists()


# 9. Every number of every verb is checked before work starts: in range, finite; the reference before any sample.
def test_out_of_range_and_non_finite_arguments_are_one_line_errors(tmp_path, smoke_teacher, capsys):
    out = tmp_path / "samples"
    sample = ["sample", "--ckpt", smoke_teacher, "--device", "cpu", "--outdir", str(out)]
    one_line(*run_main(capsys, *sample, "--seeds", "99999999999999999999999999"), "a seed is at most 4294967295")
    one_line(*run_main(capsys, *sample, "--steps", "10000000"), "argument --steps: expected an integer in [1, 1000]")
    one_line(*run_main(capsys, *sample, "--class", "-3"), "argument --class: expected an integer in [0, 1000000]")
    assert not out.exists()  # nothing was written
    for value in ("-1", "nan", "inf"):
        one_line(*run_main(capsys, "run", "rates", "--minutes", value), "argument --minutes: expected a finite number")
    one_line(*run_main(capsys, "run", "rates", "--workers", "-2"), "argument --workers: expected an integer in [0, 256]")
    one_line(*run_main(capsys, "table", "--eval-num", "-5"), "argument --eval-num: expected an integer in [1, ")
    one_line(*run_main(capsys, "table", "--kimg", "nan"), "argument --kimg: expected a finite number")
    one_line(*run_main(capsys, "featnet", "--seed", "-1"), "argument --seed: expected an integer in [0, 4294967295]")
    started = time.time()
    one_line(*run_main(capsys, "fid", "--ckpt", smoke_teacher, "--ref", str(tmp_path / "missing.npz"), "--features",
                       "digits", "--device", "cpu", "--num", "10000"), "missing.npz")
    assert time.time() - started < 5  # refused before 10,000 samples were generated


# 10. Ledger records are checked before any table, rate choice or verdict uses them; a refused record is left as found.
def test_a_tampered_ledger_record_is_refused_in_one_line_naming_it(tmp_path, capsys):
    from paperlib.study.ledger import record_digest

    results = tmp_path / "results"
    shutil.copytree(ROOT / "results" / "ledger" / "evidence" / "digits", results / "ledger" / "evidence" / "digits")
    (results / "evidence" / "digits").mkdir(parents=True)
    shutil.copy(ROOT / "results" / "evidence" / "digits" / "rates.json", results / "evidence" / "digits")
    path = results / "ledger" / "evidence" / "digits" / "table" / "gddi-lr0.0003" / "seed3.json"
    committed = json.loads(path.read_text())
    run = ["run", "evidence", "--datasets", "digits", "--results", str(results), "--runs", str(tmp_path / "runs"),
           "--figures", str(tmp_path / "figures"), "--minutes", "0"]

    def tampered(record: dict, digest: bool = True, text: str | None = None) -> str:
        text = text or json.dumps(dict(record, digest=record_digest(record)) if digest else record)
        path.write_text(text)
        line = one_line(*run_main(capsys, *run), str(path))
        assert path.read_text() == text  # left as found
        return line

    assert "lacks 'config_hash'" in tampered({k: v for k, v in committed.items() if k != "config_hash"})
    edited = dict(committed, evaluation=dict(committed["evaluation"], fid=2.09))
    assert "does not match its digest" in tampered(edited, digest=False)
    assert "fid is nan; expected a finite number" in tampered(dict(edited, evaluation=dict(edited["evaluation"],
                                                                                           fid=float("nan"))))
    assert "'seed' is str" in tampered(dict(committed, seed="3"))
    assert "not a readable ledger record" in tampered(committed, text='{"seed": ' + "9" * 5000 + "}")
    with open(path, "wb") as f:  # a sparse 1 GB record: refused by its size, never read
        f.truncate(1 << 30)
    one_line(*run_main(capsys, *run), str(path), "more than a ledger record holds")
    assert path.stat().st_size == 1 << 30
    path.write_text(json.dumps(committed))
    assert run_main(capsys, *run)[0] == 0  # the record restored: the table is written again


# 11. A network config is bounded before it is expanded or built: shared lists, huge sizes, huge or NaN numbers.
def test_network_configs_are_bounded_before_they_are_expanded_or_built(tmp_path, smoke_teacher, capsys):
    import pickle

    def edm_pickle(name: str, **kwargs) -> Path:
        root = Persistent("EDMPrecond", dict(_init_kwargs=dict(img_resolution=8, img_channels=1, **kwargs),
                                             _parameters={}, _buffers={}, _modules={}))
        path = tmp_path / name
        with _fake_torch_utils():
            path.write_bytes(pickle.dumps(dict(ema=root), protocol=4))
        return path

    shared = [1]
    for _ in range(6):  # 20^6 values once expanded, 7 lists in the file
        shared = [shared] * 20
    started = time.time()
    sample = ["sample", "--device", "cpu", "--outdir", str(tmp_path / "out"), "--ckpt"]
    path = edm_pickle("dag.pkl", model_type="SongUNet", channel_mult=shared)
    assert path.stat().st_size < 1000
    one_line(*run_main(capsys, *sample, str(path)), "dag.pkl", "expands to more than 1,000 values")
    one_line(*run_main(capsys, *sample, str(edm_pickle("blocks.pkl", model_type="SongUNet", num_blocks=10 ** 9))),
             "blocks.pkl: num_blocks is 1000000000; expected a whole number in [0, 64]")
    one_line(*run_main(capsys, *sample, str(edm_pickle("deep.pkl", extra=[[[[[[[[[[1]]]]]]]]]]))),
             "deep.pkl", "nests deeper than 8 levels")
    assert time.time() - started < 10 and not (tmp_path / "out").exists()

    config, tensors = read_network_file(smoke_teacher)
    from safetensors.torch import save_file

    def network_file(name: str, text=lambda t: t, **changes) -> Path:  # digest recomputed, as an attacker can
        edited = dict(config, init_kwargs=dict(config["init_kwargs"], **changes))
        edited["digest"] = checkpoints.network_digest(edited, tensors)
        save_file(tensors, str(tmp_path / name), metadata={"paperlib": text(json.dumps(edited))})
        return tmp_path / name

    one_line(*run_main(capsys, *sample, str(network_file("nan.safetensors", sigma_data=float("nan")))),
             "nan.safetensors: init kwargs.sigma_data is nan")
    one_line(*run_main(capsys, *sample, str(network_file("inf.safetensors", sigma_data=float("inf")))),
             "inf.safetensors: sigma_data is inf; expected a finite number of at least 0")
    huge = network_file("huge.safetensors", num_blocks=12345, text=lambda t: t.replace("12345", "9" * 5000))
    one_line(*run_main(capsys, *sample, str(huge)),
             "huge.safetensors", "not a readable paperlib network file")
    one_line(*run_main(capsys, *sample, str(network_file("levels.safetensors", channel_mult=[1] * 40))),
             "levels.safetensors: channel_mult is list; expected a list of at most 16 whole numbers")
    padded = tmp_path / "padded.safetensors"  # a real network file, made sparse: refused from its header
    shutil.copy(smoke_teacher, padded)
    with open(padded, "r+b") as f:
        f.truncate(2 << 30)
    one_line(*run_main(capsys, *sample, str(padded)), "padded.safetensors: 2,147,483,648 bytes, but its header describes")
    with open(padded, "r+b") as f:
        f.truncate(20 << 30)
    one_line(*run_main(capsys, *sample, str(padded)), "padded.safetensors: 21,474,836,480 bytes, more than a network")
    assert not (tmp_path / "out").exists()


# 12. Config values: paths stay strings; every value typed, bounded and finite before anything is built.
def test_config_values_are_typed_and_bounded_before_work_starts(tmp_path, capsys):
    train = ["train", "--preset", "digits-gdd", "--run-dir", str(tmp_path / "run")]
    one_line(*run_main(capsys, *train, "--seed", "99999999999"), "seed: expected an integer >= 0 and <= 4,294,967,295")
    one_line(*run_main(capsys, *train, "--batch", "100000000"), "batch: expected an integer >= 1 and <= 65,536")
    one_line(*run_main(capsys, *train, "--lr", "1e999"), "lr: expected a finite number")
    one_line(*run_main(capsys, *train, "--lr", "9" * 5000), "--lr: not a readable value")
    one_line(*run_main(capsys, *train, "--arch", "[" * 60000 + "]" * 60000), "--arch: not a readable value")
    one_line(*run_main(capsys, *train, "--discriminator-kwargs", json.dumps(dict(a=[[[[[[[[[1]]]]]]]]]))),
             "discriminator_kwargs", "nests deeper than 8 levels")
    one_line(*run_main(capsys, *train, "--objective", '["gdd"]'), "objective")
    assert not (tmp_path / "run").exists()  # refused before the run folder was made
    one_line(*run_main(capsys, *train, "--dataset", "2024"), "2024: dataset not found")  # a folder name, not a number
    one_line(*run_main(capsys, *train, "--teacher", '["a"]'), '["a"]: file not found')
    teacher = ["train", "--preset", "smoke-teacher", "--run-dir", str(tmp_path / "teacher")]
    one_line(*run_main(capsys, *teacher, "--arch", '{"num_blocks": 1000000}'),
             "arch: num_blocks is 1000000; expected a whole number in [0, 64]")
    one_line(*run_main(capsys, *teacher, "--arch", '{"zzz": 1}'), "cannot build the 'EDMPrecond' network", "zzz")


class DyingJob(Job):
    """A run whose worker is killed from outside (as the out-of-memory killer does) as soon as it starts."""

    def recorded(self):
        import multiprocessing

        if multiprocessing.parent_process() is not None:  # on a worker, not in the process that runs the study
            os.kill(os.getpid(), signal.SIGKILL)


# 13. A study whose worker dies says which runs were on workers and how to go on, in one line.
def test_a_killed_worker_ends_the_study_in_one_line_naming_its_runs(tmp_path):
    from paperlib.study.pool import WorkerDied, run_jobs

    jobs = [DyingJob(f"digits GDD seed {s}", "digits-gdd", str(tmp_path / f"run{s}")) for s in (1, 2)]
    with pytest.raises(WorkerDied, match=r"a worker process died .* while running digits GDD seed [12].*run the same "
                                         r"command again to go on"):
        run_jobs(jobs, workers=2, poll_seconds=0.2)

"""Runs that cannot be lost or mixed up: one writer per run folder, a log that survives a torn line, resume that
refuses a changed run and falls back from a broken state, checksums, leftovers, numeric faults, and one-line
errors (exit code 2) for what a user can get wrong."""

import json
import os
import re
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from paperlib.config import ConfigError
from paperlib.data import DatasetError, open_dataset, write_image_zip
from paperlib.presets import preset_config
from paperlib.store.checkpoints import CheckpointError, load_network, network_digest, safe_unpickle, save_network
from paperlib.store.run_folder import RunError, append_log, lock_run_dir, read_log
from paperlib.training import train

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, check=False):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "paperlib", *args], env=env, capture_output=True, text=True,
                          check=check, timeout=300)


def smoke(run_dir, teacher, **overrides):
    return preset_config("smoke-gdd", run_dir=str(run_dir), teacher=teacher, **overrides)


def one_line_error(result, *expected):
    """Exit code 2 and one line on stderr naming what was wrong, no traceback. ``result``: a finished process, or
    (exit code, stderr) from the ``main_here`` fixture."""
    code, stderr = result if isinstance(result, tuple) else (result.returncode, result.stderr)
    assert code == 2, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-2000:]
    line = [l for l in stderr.splitlines() if l.startswith("error") or ": error:" in l][-1]
    for text in expected:
        assert text in line, line
    return line


# 1. One writer per run folder.
def test_a_second_writer_is_refused_and_a_dead_writers_lock_is_gone(tmp_path, smoke_teacher):
    run = tmp_path / "run"
    handle = lock_run_dir(run)  # this process is the writer
    result = cli("train", "--preset", "smoke-gdd", "--run-dir", str(run), "--teacher", smoke_teacher)
    one_line_error(result, f"{run} is in use by another training process (pid {os.getpid()})")
    assert not (run / "config.json").exists()  # the refused run wrote nothing
    handle.close()
    # A writer killed with SIGKILL leaves no lock behind: the kernel drops it with the process.
    holder = subprocess.Popen([sys.executable, "-c", f"import sys, time; sys.path.insert(0, {str(ROOT)!r}); "
                               f"from paperlib.store.run_folder import lock_run_dir; h = lock_run_dir(__import__('pathlib')."
                               f"Path({str(run)!r})); print('locked', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(RunError, match=f"pid {holder.pid}"):
        lock_run_dir(run)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    lock_run_dir(run).close()


# 2. A torn log line, a full disk.
def test_resume_drops_a_torn_log_line_and_a_full_disk_is_one_error(tmp_path, smoke_teacher, capsys):
    run = tmp_path / "run"
    train(smoke(run, smoke_teacher, total_kimg=0.16), progress=False)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"nimg": 176, "kimg": 0.1')  # the disk filled up in the middle of a record
    train(smoke(run, smoke_teacher, total_kimg=0.32), resume=True, progress=False)
    assert "dropped a torn last line" in capsys.readouterr().out
    records = read_log(run / "metrics.jsonl")
    assert [r["nimg"] for r in records] == sorted({r["nimg"] for r in records}) and records[-1]["nimg"] == 320
    (run / "broken.jsonl").write_text('{"nimg": 1}\nnot json\n{"nimg": 2}\n')
    with pytest.raises(RunError, match=r"broken.jsonl, line 2: not a JSON record"):
        read_log(run / "broken.jsonl")
    with pytest.raises(RunError, match=r"/dev/full: could not append a log record \(No space left on device\)"):
        append_log(Path("/dev/full"), dict(nimg=1))


def test_a_failed_state_write_says_which_state_is_kept(tmp_path, smoke_teacher, monkeypatch):
    import paperlib.store.run_folder as rundir

    run = tmp_path / "run"
    train(smoke(run, smoke_teacher, total_kimg=0.16), progress=False)

    write = rundir.atomic_write_bytes

    def disk_full(path, data):
        if "training-state" in str(path):
            raise OSError(28, "No space left on device", str(path))
        write(path, data)
    monkeypatch.setattr(rundir, "atomic_write_bytes", disk_full)
    with pytest.raises(RunError, match=r"training-state-000000320.pt: could not be written \(No space left on device\); "
                                       r"kept training-state-000000160.pt"):
        train(smoke(run, smoke_teacher, total_kimg=0.32), resume=True, progress=False)
    assert (run / "training-state-000000160.pt").exists()


# 3. Ranges at parse time; a resume without a state; no duplicated records.
@pytest.mark.parametrize("key,value,message", [
    ("keep_states", -1, "keep_states: expected an integer >= 1 and <= 1,000,000, got -1"),
    ("lr", "abc", "lr: expected a finite number > 0 and <= 1,000,000,000,000, got 'abc'"),
    ("batch", 2.5, "batch: expected an integer >= 1 and <= 65,536, got 2.5"),
    ("betas", 5, "betas: expected two numbers in [0, 1)"),
    ("r1_interval", 0, "r1_interval: expected an integer >= 1 and <= 1,000,000, got 0"),
    ("seed", "abc", "seed: expected an integer >= 0 and <= 4,294,967,295, got 'abc'"),
    ("total_kimg", "abc", "total_kimg: expected a finite number > 0 and <= 1,000,000,000,000, got 'abc'"),
    ("dataset", 2024, "dataset: expected a path or name (a string of at most 4096 characters), got 2024"),
    ("device", "gpu", "device: expected auto, cpu or cuda[:N], got 'gpu'"),
    ("conditional", "yes", "conditional: expected true or false, got 'yes'"),
])
def test_config_values_are_checked_before_anything_is_written(tmp_path, smoke_teacher, key, value, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        train(smoke(tmp_path / "run", smoke_teacher, **{key: value}), progress=False)
    assert not (tmp_path / "run").exists()


def test_resume_without_a_state_starts_fresh_without_duplicate_records(tmp_path, smoke_teacher, capsys):
    run = tmp_path / "run"
    run.mkdir()
    # A run killed before its first state: its log has records, there is no state to resume from.
    (run / "metrics.jsonl").write_text(json.dumps(dict(nimg=80, kimg=0.08)) + "\n")
    train(smoke(run, smoke_teacher, total_kimg=0.16), resume=True, progress=False)
    assert "has no training state to resume from: starting from scratch" in capsys.readouterr().out
    nimg = [r["nimg"] for r in read_log(run / "metrics.jsonl")]
    assert nimg == sorted(set(nimg)) == [80, 160]


# 4. Resume with a different config.
def test_resume_refuses_a_changed_run_and_allows_an_extended_one(tmp_path, smoke_teacher):
    run = tmp_path / "run"
    train(smoke(run, smoke_teacher, total_kimg=0.16), progress=False)
    saved = (run / "config.json").read_text()
    with pytest.raises(RunError, match=r"holds a different run.*Changed: batch: 16 -> 32; lr: 0.0001 -> 0.001"):
        train(smoke(run, smoke_teacher, total_kimg=0.32, lr=1e-3, batch=32), resume=True, progress=False)
    with pytest.raises(RunError, match=r"Changed: freeze_level: 0 -> 1"):
        train(smoke(run, smoke_teacher, total_kimg=0.32, freeze_level=1), resume=True, progress=False)
    assert (run / "config.json").read_text() == saved  # nothing was written before the check
    summary = train(smoke(run, smoke_teacher, total_kimg=0.32, log_kimg=0.16), resume=True, progress=False)
    assert summary["nimg"] == 320 and json.loads((run / "config.json").read_text())["total_kimg"] == 0.32


def test_resume_finds_its_teacher_in_a_moved_checkout_and_refuses_another_teacher(tmp_path, smoke_teacher):
    run, checkout = tmp_path / "run", tmp_path / "checkout"
    checkout.mkdir()
    teacher = checkout / "teacher.safetensors"
    teacher.write_bytes(Path(smoke_teacher).read_bytes())
    train(smoke(run, str(teacher), total_kimg=0.16), progress=False)
    moved = checkout.rename(tmp_path / "moved") / "teacher.safetensors"  # the old path is gone
    other = load_network(str(moved))
    with torch.no_grad():
        next(other.parameters()).add_(1.0)
    other_path = save_network(other, tmp_path / "other.safetensors")
    with pytest.raises(RunError, match=r"Changed: teacher: "):
        train(smoke(run, str(other_path), total_kimg=0.32), resume=True, progress=False)
    summary = train(smoke(run, str(moved), total_kimg=0.32), resume=True, progress=False)
    assert summary["nimg"] == 320 and json.loads((run / "config.json").read_text())["teacher"] == str(moved)


# 5. and 9. A corrupt, truncated or edited training state; a flipped byte in a network file.
def test_resume_skips_a_broken_state_keeps_it_and_says_why(tmp_path, smoke_teacher, capsys):
    run = tmp_path / "run"
    train(smoke(run, smoke_teacher, total_kimg=0.32, snapshot_kimg=0.08, keep_states=3), progress=False)
    states = sorted(run.glob("training-state-*.pt"))
    assert [p.name[-12:-3] for p in states] == ["000000160", "000000240", "000000320"]
    states[-1].write_bytes(states[-1].read_bytes()[:1000])  # truncated
    payload = torch.load(states[-2], weights_only=True)
    payload["ema"][next(iter(payload["ema"]))].add_(1.0)  # edited weights: the digest no longer matches
    torch.save(payload, states[-2])
    broken = [p.read_bytes() for p in states[-2:]]
    train(smoke(run, smoke_teacher, total_kimg=0.4, snapshot_kimg=0.08, keep_states=3), resume=True, progress=False)
    out = capsys.readouterr().out
    assert f"skipping {states[-1]} (kept on disk)" in out and f"skipping {states[-2]} (kept on disk)" in out
    assert "does not match its digest" in out and "resuming" in out and "000000160.pt (0.16 kimg)" in out
    # set aside, never overwritten by the states the resumed run wrote at the same kimg
    assert [Path(f"{p}.broken").read_bytes() for p in states[-2:]] == broken and states[-1].exists()
    assert f"renamed {states[-1].name} to {states[-1].name}.broken" in out
    # Every state file is kept; none that loads, and the run stops instead of starting over.
    for path in run.glob("training-state-*.pt"):
        path.write_bytes(b"PK\x03\x04 not a state")
    with pytest.raises(RunError, match="no training state in .* loads"):
        train(smoke(run, smoke_teacher, total_kimg=0.48, snapshot_kimg=0.08, keep_states=3), resume=True,
              progress=False)


def test_a_flipped_byte_in_a_network_file_is_found(tmp_path, smoke_teacher):
    path = tmp_path / "net.safetensors"
    save_network(load_network(smoke_teacher), path)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # a bit of the last weight
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="net.safetensors: its config or weights do not match the digest"):
        load_network(path)
    assert load_network(path, verify=False).img_resolution == 8  # the opt-out for speed


# 10. Leftovers of a killed write.
def test_leftover_temporary_files_are_removed_on_the_next_start(tmp_path, smoke_teacher, capsys):
    run = tmp_path / "run"
    train(smoke(run, smoke_teacher, total_kimg=0.16), progress=False)
    (run / ".training-state-000000320.pt.abc123.paperlib.tmp").write_bytes(b"x" * 1000)
    (run / ".network-snapshot-000000320.safetensors.def.paperlib.tmp").write_bytes(b"y")
    train(smoke(run, smoke_teacher, total_kimg=0.32), resume=True, progress=False)
    assert "removed .training-state-000000320.pt.abc123.paperlib.tmp" in capsys.readouterr().out
    assert not list(run.glob(".*.paperlib.tmp"))


# 8. Numeric faults.
def test_a_diverging_run_stops_and_never_writes_non_finite_weights(tmp_path, smoke_teacher, monkeypatch):
    import paperlib.objectives as objectives_module

    def nan_loss(logits_fake, kind="ns"):
        return logits_fake[0].mean() * float("nan")
    run = tmp_path / "run"
    monkeypatch.setattr(objectives_module, "generator_loss", nan_loss)
    with pytest.raises(RunError, match=r"stopped at .* kimg: 5 iterations in a row had NaN/inf gradients"):
        train(smoke(run, smoke_teacher, total_kimg=0.32, log_kimg=0.016, max_nonfinite_steps=5), progress=False)
    assert not (run / "network.safetensors").exists()


def test_non_finite_weights_are_never_saved(tmp_path, smoke_teacher):
    from paperlib.store.run_folder import RunFolder

    net = load_network(smoke_teacher)
    with torch.no_grad():
        next(net.parameters())[0] = float("nan")
    with pytest.raises(RunError, match="not written, the EMA network has NaN/inf weights; the last good snapshot is s.x"):
        RunFolder(tmp_path).write_network(net, tmp_path / "n.safetensors", {}, Path("s.x"))
    assert not (tmp_path / "n.safetensors").exists()


# 6, 6b, 7. User errors: one line, exit code 2.
def test_command_line_errors_are_one_line(tmp_path, smoke_teacher, main_here):
    base = ["train", "--preset", "smoke-gdd", "--teacher", smoke_teacher, "--run-dir", str(tmp_path / "r")]
    one_line_error(cli(*base, "--lr", "abc"), "lr: expected a finite number > 0 and <= 1,000,000,000,000, got 'abc'")
    # the rest in this process: the same main(), without an interpreter start-up each
    one_line_error(main_here(*base, "--dataset", "digits-x"), "dataset 'digits-x': expected digits[-8|-16]")
    if not torch.cuda.is_available():
        one_line_error(main_here(*base, "--device", "cuda"), "no CUDA GPU is visible")
    (tmp_path / "file").write_text("x")
    one_line_error(main_here("sample", "--ckpt", smoke_teacher, "--seeds", "0-1", "--steps", "1", "--outdir",
                             tmp_path / "file"), str(tmp_path / "file"), "File exists")
    one_line_error(main_here("sample", "--ckpt", smoke_teacher, "--batch", "0", "--outdir", tmp_path / "o"),
                   "argument --batch: expected an integer in [1, 10000000], got 0")
    one_line_error(main_here("fid", "--ckpt", smoke_teacher, "--ref", "digits-8", "--num", "-5"),
                   "argument --num: expected an integer in [1, 10000000], got -5")
    one_line_error(main_here("sample", "--ckpt", smoke_teacher, "--device", "gpu", "--outdir", tmp_path / "o"),
                   "argument --device: expected cpu or cuda[:N], got 'gpu'")
    # a conditional run from an unconditional teacher
    one_line_error(main_here(*base, "--conditional", "true", "--dataset", "digits-8:train"),
                   "conditional is true but the teacher", "is unconditional")


def test_bad_dataset_files_are_one_line_errors(tmp_path):
    from PIL import Image

    images = np.zeros((4, 8, 8, 1), np.uint8)
    zipped = write_image_zip(tmp_path / "bool.zip", images, None)
    import zipfile
    with zipfile.ZipFile(zipped, "a") as z:  # labels written as booleans
        z.writestr("dataset.json", json.dumps(dict(labels=[[n, True] for n in sorted(z.namelist())[:4]])))
    with pytest.raises(DatasetError, match=r"label entry \['.*', True\] is not \[file name, integer class\]"):
        open_dataset(zipped)
    for labels, why in ((5, "'labels' is a int; expected a list"), ([["x", 10 ** 30]], "label 1000000000000000000000000000000 "
                        "of 'x' is outside the classes 0..99999"), ([["x", -1]], "label -1 of 'x' is outside")):
        with zipfile.ZipFile(zipped, "a") as z:
            z.writestr("dataset.json", json.dumps(dict(labels=labels)))
        with pytest.raises(DatasetError, match=re.escape(why)):
            open_dataset(zipped)
    with zipfile.ZipFile(zipped, "a") as z:  # a whole number too long for Python to read
        z.writestr("dataset.json", '{"labels": [["x", ' + "9" * 5000 + "]]}")
    with pytest.raises(DatasetError, match="dataset.json: not valid JSON: Exceeds the limit"):
        open_dataset(zipped)
    bomb = tmp_path / "bomb"
    bomb.mkdir()
    Image.new("L", (8, 8)).save(bomb / "a.png")
    Image.new("1", (14000, 14000)).save(bomb / "b.png")  # 196M pixels: PIL's decompression-bomb limit
    data = open_dataset(bomb)
    with pytest.raises(DatasetError, match=r"b.png: refused, the image is too large to decode safely"):
        data.raw_image(1)


def test_a_dataset_error_inside_a_loader_worker_is_one_line(tmp_path, smoke_teacher):
    folder = tmp_path / "data"
    folder.mkdir()
    from PIL import Image
    for i in range(8):
        Image.new("L", (8, 8), color=i).save(folder / f"{i}.png")
    (folder / "5.png").write_bytes(b"not a png")
    result = cli("train", "--preset", "smoke-gdd", "--teacher", smoke_teacher, "--run-dir", str(tmp_path / "r"),
                 "--dataset", str(folder), "--num_workers", "1", "--batch", "8", "--total_kimg", "0.016",
                 "--no-progress")
    line = one_line_error(result, "5.png: not a readable image")
    assert "DataLoader worker" not in line and "Original Traceback" not in result.stderr


def test_malformed_pickles_cannot_make_paperlib_allocate(tmp_path):
    memo = tmp_path / "memo.pkl"
    memo.write_bytes(b"\x80\x02N" + b"r" + struct.pack("<I", 2 ** 27) + b".")  # LONG_BINPUT at index 2^27
    probe = ("import resource, sys; from paperlib.store.checkpoints import safe_unpickle; "
             "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; assert safe_unpickle(sys.argv[1]) is None; "
             "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)")
    grown_kib = subprocess.run([sys.executable, "-c", probe, str(memo)], capture_output=True, text=True, check=True,
                               env=dict(os.environ, PYTHONPATH=str(ROOT))).stdout
    assert int(grown_kib) < 100_000  # a dict memo: not an array of 2^27 entries (1 GiB)
    claim = tmp_path / "claim.pkl"
    claim.write_bytes(b"\x80\x05\x96" + struct.pack("<Q", 2 ** 40) + b"x")  # BYTEARRAY8 claiming 1 TiB
    with pytest.raises(CheckpointError, match=r"claim.pkl: a bytearray of 1099511627776 bytes is claimed in a file"):
        safe_unpickle(claim)
    text = tmp_path / "text.pkl"
    text.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 2 ** 40) + b"x")  # BINBYTES8 claiming 1 TiB
    with pytest.raises(CheckpointError, match="text.pkl: not a readable network pickle"):
        safe_unpickle(text)


def test_a_network_config_cannot_ask_for_unbounded_memory(tmp_path, smoke_teacher, monkeypatch):
    from safetensors.torch import load_file, save_file

    path = tmp_path / "big.safetensors"
    net = load_network(smoke_teacher)
    save_network(net, path)
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["paperlib"])
    meta["init_kwargs"]["model_channels"] = 4096  # an edited config: a few KB asking for billions of weights
    tensors = load_file(str(path))
    meta["digest"] = network_digest(meta, tensors)  # the digest recomputed: only the size check stands in the way
    save_file(tensors, str(path), metadata={"paperlib": json.dumps(meta)})
    with pytest.raises(CheckpointError, match=r"big.safetensors: its config asks for a network of [\d,]+ parameters, "
                                              r"above the limit of 2,000,000,000; set PAPERLIB_MAX_PARAMS"):
        load_network(path)
    monkeypatch.setenv("PAPERLIB_MAX_PARAMS", "1000")
    with pytest.raises(CheckpointError, match="above the limit of 1,000"):
        load_network(smoke_teacher)


def test_refusals_inside_a_pickle_name_the_file(tmp_path):
    path = tmp_path / "dill.pkl"  # dill._dill._load_type('function'): refused deep inside the stand-in
    path.write_bytes(b"\x80\x02cdill._dill\n_load_type\nX\x08\x00\x00\x00function\x85R.")
    with pytest.raises(CheckpointError, match=r"dill.pkl: dill._dill._load_type\('function'\) is not allowed"):
        safe_unpickle(path)


def test_reference_statistics_with_pickled_objects_are_refused_naming_the_file(tmp_path):
    from paperlib.metrics import MetricError, Stats

    path = tmp_path / "ref.npz"
    np.savez(path, mu=np.array([object()], dtype=object), sigma=np.eye(1))
    with pytest.raises(MetricError, match=r"ref.npz: mu holds Python objects \(a pickle\)"):
        Stats.load(path)


def test_non_finite_streaks_count_only_new_steps():
    """A resumed run's earlier sanitised steps are not a streak; a streak ends at the first finite iteration."""
    from types import SimpleNamespace

    from paperlib.training import NonFiniteWatch

    counter = SimpleNamespace(_sanitized=torch.tensor(5))
    objective = SimpleNamespace(optimizers={"G": counter}, sanitized_tensor=lambda: counter._sanitized.clone())
    watch = NonFiniteWatch(objective, "cpu")
    for bad in (False, True, True, False, True):
        counter._sanitized += int(bad)
        watch.update()
    assert int(watch.worst) == 2 and int(watch.streak) == 1
    watch.check(3, 1.0, None, warn=False)  # below the limit: no stop
    with pytest.raises(RunError, match="2 iterations in a row"):
        watch.check(2, 1.0, None, warn=False)

"""A training run's folder: one writer at a time, leftovers of killed writes, a log that survives a torn line, a
resume that refuses a changed run, and training states that are checked and fall back to an older one.

:class:`RunFolder` owns the files of a run folder, and is the only place their names are spelled: ``config.json``
(the run's TrainConfig), ``metrics.jsonl`` (one JSON record per line, read only by :func:`read_log`),
``parts.jsonl`` (one line per start or resume of training: when, from which kimg, code and machine),
``training-state-<nimg>.pt`` (torch files read with ``weights_only=True``), ``network-snapshot-<nimg>.safetensors``
and ``network.safetensors`` (paperlib's network format), ``result.json`` (the final evaluation),
``progress/kimg-<nimg>.npz`` (sample grids over training), ``.lock`` (held by the writing process) and
``<state>.broken`` (a state a resume skipped because it does not load, set aside so that no new state overwrites it). Every file is
opened without following a symbolic link that paperlib did not make, and a training state is refused unless its
stored digest covers all of it: tensors, config, optimiser settings, counters and random states.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import torch

from paperlib.store.checkpoints import NETWORK_FILENAME, save_network, weights_identity
from paperlib.store.files import TEMP_SUFFIX, atomic_write_bytes, open_no_follow
from paperlib.store.integrity import IntegrityError, check_stored_zip, content_digest

# Config values that only extend a run or change how it is watched: a resume may change these, no others.
EXTENDABLE = ("run_dir", "total_kimg", "snapshot_kimg", "log_kimg", "keep_states", "num_workers", "device",
              "max_nonfinite_steps", "bank_dir")
DERIVED = "derived"  # config.json's values that follow from the config (TrainConfig.derived), not compared on resume


class RunError(ValueError):
    """A run folder cannot be used as asked; the message names the folder or file and what to do."""


class NonFiniteError(RunError):
    """Training stopped because its gradients stayed NaN/inf (a diverged run: a sweep records it as such)."""


def say(message: str) -> None:
    print(f"[paperlib] {message}", flush=True)


class RunFolder:
    """The files of one run folder, by name; ``nimg`` counts training images (file names hold it as 9 digits)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def log(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def parts_log(self) -> Path:
        return self.path / "parts.jsonl"

    @property
    def result(self) -> Path:
        return self.path / "result.json"

    @property
    def network(self) -> Path:
        return self.path / NETWORK_FILENAME

    @property
    def lock_file(self) -> Path:
        return self.path / ".lock"

    @property
    def progress(self) -> Path:
        return self.path / "progress"

    def state(self, nimg: int) -> Path:
        return self.path / f"training-state-{nimg:09d}.pt"

    def snapshot(self, nimg: int) -> Path:
        return self.path / f"network-snapshot-{nimg:09d}.safetensors"

    def progress_file(self, nimg: int) -> Path:
        return self.progress / f"kimg-{nimg:09d}.npz"

    def states(self) -> list[Path]:
        return sorted(self.path.glob("training-state-*.pt"))

    def snapshots(self) -> list[Path]:
        return sorted(self.path.glob("network-snapshot-*.safetensors"))

    def progress_files(self) -> list[Path]:
        return sorted(self.progress.glob("kimg-*.npz"))

    def records(self) -> list[dict]:
        """The log's records, read without changing the file (a live run may be writing its last line)."""
        return read_log(self.log, repair=False)

    def parts(self) -> list[dict]:
        """Each start or resume of training (:func:`paperlib.store.provenance.training_part`), in order; empty for a
        folder trained before paperlib noted them."""
        return read_log(self.parts_log, repair=False) if self.parts_log.exists() else []

    def note_part(self, part: dict, fresh: bool) -> None:
        """Note that training starts (``fresh``: from scratch, earlier notes dropped) or resumes, as ``part`` says."""
        if fresh:
            write_log(self.parts_log, [part])
        else:
            append_log(self.parts_log, part)

    def curve(self) -> dict[str, list[float]]:
        """What the run's callbacks logged during training (every key logged as ``eval_<key>``; FID, precision,
        recall, the discriminator's view, ...): lists keyed 'kimg' and each such key without its prefix, of equal
        length in training order (NaN where one record lacks a key); empty lists when nothing was scored."""
        if not self.log.exists():
            raise FileNotFoundError(f"{self.log}: no training log (was the run trained with paperlib?)")
        scored = [r for r in self.records() if "eval_fid" in r]
        keys = list(dict.fromkeys(k for r in scored for k in r if k.startswith("eval_")))
        return {"kimg": [r["kimg"] for r in scored],
                **{k.removeprefix("eval_"): [r.get(k, float("nan")) for r in scored] for k in keys}}

    # --- A training run's use of its folder: take it, resume from it, snapshot into it.

    def begin(self, config: dict, derived: dict, resume: bool, writer: bool, map_location) -> dict | None:
        """Take this folder for a run of ``config`` (a TrainConfig as a dict; ``derived``, the values that follow from
        it, is written beside it): refuse a file at its path, take its lock (``writer``: the process that writes),
        refuse a finished or started run unless ``resume``, read the newest training state that loads and refuse a
        config that changes the run; only then remove leftovers of killed writes and write ``config.json``. Returns
        the state to resume from, or None."""
        if self.path.exists() and not self.path.is_dir():
            raise RunError(f"run_dir {self.path} is a file; expected a folder (or a path that does not exist yet)")
        self._lock = lock_run_dir(self.path) if writer else None  # held until the process ends
        if self.states() and not resume:
            raise RunError(f"{self.path} already holds a run ({self.states()[-1].name}); pass --resume to continue it "
                           f"or choose another run_dir")
        state, self.resumed_from, skipped = load_newest_state(self.path, map_location) if resume else (None, None, [])
        if resume and state is None and self.states():
            raise RunError(f"no training state in {self.path} loads (see above); every file is kept: move them away to "
                           f"start the run over")
        if writer and state is not None:  # the resumed run writes states of those kimg again: never over them
            for broken in skipped:
                aside = set_aside(broken)
                say(f"renamed {broken.name} to {aside.name}, kept beside the run")
        if resume:
            check_resumed_config(self.path, config, state)
        if resume and state is None and writer:
            say(f"{self.path} has no training state to resume from: starting from scratch")
        if writer:
            remove_leftovers(self.path)
            atomic_write_bytes(self.config, json.dumps(dict(config, **{DERIVED: derived}), indent=2).encode())
        return state

    def restore(self, state: dict | None, modules: dict, ema: torch.nn.Module, optimizers: dict,
                noise: torch.Generator, writer: bool) -> Progress:
        """Load ``state`` (:meth:`begin`'s) into the run's ``modules``, ``ema``, ``optimizers`` (each with
        ``load_state_dict``), ``noise`` generator and torch's global random state, and (``writer``) drop the log records
        written after it; with no state, start the log afresh. Returns where training goes on from."""
        if state is None:
            if writer and self.log.exists():  # a run that stopped before its first state: its records start over
                self.log.unlink()
            return Progress()
        for name, module in modules.items():
            module.load_state_dict(state["modules"][name])
        ema.load_state_dict(state["ema"])
        for name, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        noise.set_state(state["noise_rng"].to(noise.get_state().device))
        torch.set_rng_state(state["torch_rng"])
        progress = Progress(int(state["cur_nimg"]), int(state["batch_idx"]), float(state.get("trained_seconds", 0.0)))
        if writer:
            write_log(self.log, [r for r in read_log(self.log)
                                 if isinstance(r.get("nimg"), (int, float)) and r["nimg"] <= progress.cur_nimg])
            say(f"resuming {self.path} from {self.resumed_from.name} ({progress.cur_nimg / 1000:g} kimg)")
        return progress

    def snapshot_state(self, progress: Progress, config: dict, teacher: str | None, modules: dict,
                       ema: torch.nn.Module, optimizers: dict, noise: torch.Generator, extra: dict, keep: int,
                       last_good: Path | None) -> Path:
        """Write the EMA network's snapshot and the training state at ``progress`` (everything a resume needs, with
        its digest), then delete all but the newest ``keep`` states; returns the snapshot's path. ``last_good`` is the
        snapshot an error names as kept."""
        snapshot = self.snapshot(progress.cur_nimg)
        self.write_network(ema, snapshot, extra, last_good)
        save_state(self.state(progress.cur_nimg), dict(
            config=json.dumps(config), teacher=teacher, cur_nimg=progress.cur_nimg, batch_idx=progress.batch_idx,
            modules={k: m.state_dict() for k, m in modules.items()}, ema=ema.state_dict(),
            optimizers={k: o.state_dict() for k, o in optimizers.items()}, noise_rng=noise.get_state(),
            torch_rng=torch.get_rng_state(), trained_seconds=progress.trained_seconds))
        for old in self.states()[:-keep]:
            old.unlink()
        return snapshot

    def write_network(self, ema: torch.nn.Module, path: Path, extra: dict, kept: Path | None) -> None:
        """Save the EMA network at ``path``, never with non-finite weights, a failed write a one-line error naming
        ``kept``, the last good snapshot."""
        if not all(bool(torch.isfinite(p).all()) for p in ema.parameters()):
            raise RunError(f"{path}: not written, the EMA network has NaN/inf weights; "
                           + (f"the last good snapshot is {kept}" if kept else "no snapshot was written"))
        try:
            save_network(ema, path, extra=extra)
        except OSError as exc:
            raise RunError(f"{path}: could not be written ({exc.strerror}); "
                           + (f"{kept} is kept" if kept else "no earlier snapshot exists")) from None


@dataclass
class Progress:
    """Where a run stands: training images seen, global batches taken and wall time spent training (seconds, over
    every resumed part, evaluations excluded)."""

    cur_nimg: int = 0
    batch_idx: int = 0
    trained_seconds: float = 0.0


# ----------------------------------------------------------------------------------------------------------
# One writer per folder.

def lock_run_dir(run_dir: Path):
    """Take the folder's exclusive lock for this process's lifetime (the kernel drops it when the process dies, so
    a crashed run leaves none behind). Returns the open lock file; refuses a second writer, naming its pid."""
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = os.fdopen(open_no_follow(RunFolder(run_dir).lock_file, os.O_RDWR | os.O_CREAT), "r+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise RunError(f"{run_dir} is in use by another training process (pid {holder}); wait for it to finish or "
                       f"choose another run_dir") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def remove_leftovers(run_dir: Path) -> None:
    """Delete the temporary files of writes that a killed process left (``.<name>.<random>.paperlib.tmp``, regular
    files only: nothing a user named otherwise, no folder, no link's target); call under the lock, so that no live
    writer owns them."""
    for tmp in sorted(run_dir.glob(f".*{TEMP_SUFFIX}")):
        info = tmp.lstat()
        if not stat.S_ISREG(info.st_mode):
            continue
        size = info.st_size
        tmp.unlink()
        say(f"removed {tmp.name} ({size / 2 ** 20:.1f} MiB), left by an interrupted write")


# ----------------------------------------------------------------------------------------------------------
# The metrics log.

def read_log(path: Path, repair: bool = True) -> list[dict]:
    """The records of ``metrics.jsonl`` (each a JSON object): the one reader of that file. A torn last line (a write
    cut short by a full disk or a kill, or the line a live run is writing) is dropped; with ``repair`` it is also
    removed from the file, saying so. A broken line before it, or a line that is JSON but not an object, is an error
    naming the file and line."""
    if not path.exists():
        return []
    lines = path.read_text(errors="replace").splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:  # ValueError: bad JSON, or a whole number too long to read
            if number < len(lines):
                raise RunError(f"{path}, line {number}: not a JSON record ({exc}); repair or remove that line") from None
            if repair:
                say(f"{path}: dropped a torn last line ({len(line)} characters) left by an interrupted write")
                write_log(path, records)
            break
        if not isinstance(record, dict):
            raise RunError(f"{path}, line {number}: a JSON {type(record).__name__}, not a record (an object); repair "
                           f"or remove that line")
        records.append(record)
    return records


def write_log(path: Path, records: list[dict]) -> None:
    atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in records).encode())


def append_log(path: Path, record: dict) -> None:
    """Append one record; a failed write (disk full) is an error naming the file (resume drops the torn line)."""
    try:
        with os.fdopen(open_no_follow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "a") as f:
            f.write(json.dumps(record) + "\n")
    except OSError as exc:
        raise RunError(f"{path}: could not append a log record ({exc.strerror}); the training states and snapshots "
                       f"written so far are kept, and a resume drops the torn line") from None


# ----------------------------------------------------------------------------------------------------------
# Resuming: the same run, from a state that loads.

def config_changes(saved: dict, new: dict, ignore=(), saved_teacher: str | None = None) -> list[str]:
    """'key: old -> new' for every key of two run configs that differs, apart from ``ignore``. The teacher is the
    same when its weights are (:func:`~paperlib.store.checkpoints.weights_identity`), so a checkout moved to another folder (the
    mini teachers are package files, named by absolute path) still resumes its runs: the new file is compared with
    ``saved_teacher`` (the identity the run stored) or, where none was stored, with the old file if it still exists."""
    def same(key: str) -> bool:
        old, now = saved.get(key, new.get(key)), new.get(key, saved.get(key))
        if old == now:
            return True
        if key != "teacher" or not (isinstance(old, str) and isinstance(now, str) and Path(now).is_file()):
            return False
        was = saved_teacher or (weights_identity(old) if Path(old).is_file() else None)
        return was is not None and weights_identity(now) == was

    return [f"{k}: {saved.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(saved) | set(new))
            if k not in ignore and not same(k)]


def check_resumed_config(run_dir: Path, new: dict, state: dict | None) -> None:
    """Refuse to resume ``run_dir`` with a config that changes what defines the run (anything outside
    :data:`EXTENDABLE`), listing every difference. The run is what its newest training state says (its digest covers
    the config), and ``config.json`` too where it is present; nothing is written before this check passes."""
    saved, teacher = [], state.get("teacher") if state is not None else None  # the teacher's identity, if stored
    if state is not None:
        saved.append(("its training state", json.loads(state["config"])))
    path = RunFolder(run_dir).config
    if path.exists():
        try:
            saved.append((path.name, json.loads(path.read_text())))
        except (ValueError, RecursionError, UnicodeDecodeError) as exc:
            raise RunError(f"{path}: not readable JSON ({str(exc)[:200]}); cannot check that the resumed run is the "
                           f"same") from None
    for source, config in saved:
        changed = (config_changes(config, new, ignore=(*EXTENDABLE, DERIVED), saved_teacher=teacher)
                   if isinstance(config, dict) else ["not a JSON object"])
        if changed:
            raise RunError(f"{run_dir} holds a different run (by {source}); resuming may change only "
                           f"{', '.join(EXTENDABLE[1:])}. Changed: {'; '.join(changed)}. Start it in another run_dir instead")


def state_paths(run_dir: Path) -> list[Path]:
    return RunFolder(run_dir).states()


def save_state(path: Path, payload: dict) -> None:
    """Write a training state atomically with the digest of all its content; a failed write (disk full) is an
    error that says which state is kept."""
    buf = io.BytesIO()
    torch.save(dict(payload, digest=content_digest(payload)), buf)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as exc:
        kept = [p.name for p in state_paths(path.parent) if p != path]
        raise RunError(f"{path}: could not be written ({exc.strerror}); kept "
                       f"{kept[-1] if kept else 'no earlier training state'}, which --resume continues from") from None


def read_state(path: Path, map_location) -> dict:
    """A training state, refused (IntegrityError) unless its members are stored as written and its digest matches
    everything in it; a state written before digests covered more than its tensors is refused too."""
    check_stored_zip(path)
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict):
        raise IntegrityError(f"holds a {type(state).__name__}, not a training state")
    digest = state.pop("digest", None)
    if digest is None:
        raise IntegrityError("carries no digest over its content (written by an older paperlib); its settings "
                             "cannot be verified")
    if digest != content_digest(state):
        raise IntegrityError("its content does not match its digest (corrupted or edited)")
    if not isinstance(state.get("config"), str):
        raise IntegrityError("holds no run config")
    return state


def load_newest_state(run_dir: Path, map_location) -> tuple[dict | None, Path | None, list[Path]]:
    """The newest training state that :func:`read_state` accepts, with its path, and the newer ones it skipped; (None,
    None, all of them) if none loads. A state that fails is skipped with a message naming it and why, and kept."""
    skipped = []
    for path in reversed(state_paths(run_dir)):
        try:
            return read_state(path, map_location), path, skipped
        except Exception as exc:  # any failure to read one state: try the next older one, keep the file
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            say(f"skipping {path} (kept on disk): {type(exc).__name__}: {why[:300]}")
            skipped.append(path)
    return None, None, skipped


def set_aside(path: Path) -> Path:
    """Rename ``path`` to ``<name>.broken`` (``.broken-2``, ... when taken), out of every glob of the run's files;
    returns the new path."""
    for n in range(1, 1000):
        aside = path.with_name(path.name + (".broken" if n == 1 else f".broken-{n}"))
        if not os.path.lexists(aside):
            os.rename(path, aside)
            return aside
    raise RunError(f"{path}: cannot be set aside, {path.name}.broken-1..999 all exist")

"""The instance-distillation baseline's fixed bank of (noise, teacher image) pairs.

Instance distillation is usually run on a dataset of teacher solutions made once (as in knowledge distillation
of diffusion models), not with a fresh multi-step solve per training step: the bank costs ``size`` solves per
teacher instead of one per training image, and is shared by every seed and run of that teacher. It is cached
beside the runs as ``instance-bank-<teacher sha256[:12]>-nfe<NFE>-<size>.pt``, so a changed teacher file, step
count or size makes a new bank and never reuses a stale one. The file carries its teacher's full SHA-256, its step
count and a digest of all it holds: a bank that fails any check, or has the wrong shapes, is rebuilt, never used.
"""

from __future__ import annotations

import fcntl
import io
import os
from pathlib import Path

import torch

from paperlib.diffusion import edm_sampler, edm_schedule
from paperlib.store.files import atomic_write_bytes, file_sha256, open_no_follow
from paperlib.store.integrity import IntegrityError, check_stored_zip, content_digest
from paperlib.store.run_folder import say

SOLVE_BATCH = 256
# The bank's noises come from one generator seeded here: far from every latent range an evaluation uses.
BANK_SEED = 2_000_000_000


def bank_folder(bank_dir: str, run_dir: str | Path) -> Path:
    """The folder a run's banks are cached in: ``bank_dir`` when set (banks shared across runs), else the run
    folder's parent (shared by the seeds of one row)."""
    return Path(bank_dir) if bank_dir else Path(run_dir).parent


def bank_path(teacher_path: str | Path, size: int, num_steps: int, folder: str | Path) -> Path:
    """Where the bank of this teacher file, Heun step count and size is cached."""
    return Path(folder) / f"instance-bank-{file_sha256(teacher_path)[:12]}-nfe{2 * num_steps - 1}-{size}.pt"


@torch.no_grad()
def build_bank(teacher: torch.nn.Module, size: int, num_steps: int, device) -> dict[str, torch.Tensor]:
    """Solve the teacher (Heun, ``num_steps`` steps, NFE 2N - 1) for ``size`` noises drawn from :data:`BANK_SEED`.
    Conditional teachers get balanced classes (pair i has class i mod label_dim). Returns float32 tensors on the CPU:
    noise and target [size, C, R, R], labels [size, label_dim] one-hot ([size, 0] when unconditional)."""
    shape = (size, teacher.img_channels, teacher.img_resolution, teacher.img_resolution)
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(BANK_SEED))
    labels = torch.zeros(size, teacher.label_dim)
    if teacher.label_dim:
        labels[torch.arange(size), torch.arange(size) % teacher.label_dim] = 1
    targets, t_steps = [], edm_schedule(teacher, num_steps, device=device)
    for start in range(0, size, SOLVE_BATCH):
        z = noise[start:start + SOLVE_BATCH].to(device)
        c = labels[start:start + SOLVE_BATCH].to(device) if teacher.label_dim else None
        targets.append(edm_sampler(teacher, z, t_steps, c).float().cpu())
    return dict(noise=noise, target=torch.cat(targets), labels=labels)


def check_bank(bank: dict, teacher: torch.nn.Module, teacher_sha256: str, size: int, num_steps: int) -> None:
    """Raise IntegrityError unless ``bank`` (as read from its file) is the bank of this teacher, step count and size:
    its digest, its teacher's SHA-256 and step count, and its tensors' shapes and dtypes."""
    if not isinstance(bank, dict):
        raise IntegrityError(f"holds a {type(bank).__name__}, not a bank")
    digest = bank.pop("digest", None)
    if digest != content_digest(bank):
        raise IntegrityError("its content does not match its digest" if digest else "it carries no digest")
    if bank.get("teacher_sha256") != teacher_sha256 or bank.get("num_steps") != num_steps:
        raise IntegrityError("it was solved by another teacher file or step count")
    image = (size, teacher.img_channels, teacher.img_resolution, teacher.img_resolution)
    for name, shape in dict(noise=image, target=image, labels=(size, teacher.label_dim)).items():
        value = bank.get(name)
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape or value.dtype != torch.float32:
            found = (f"{str(value.dtype).removeprefix('torch.')} {list(value.shape)}" if isinstance(value, torch.Tensor)
                     else type(value).__name__)
            raise IntegrityError(f"its {name} is {found}; expected float32 {list(shape)}")


def load_or_build_bank(teacher: torch.nn.Module, teacher_path: str | Path, size: int, num_steps: int,
                       folder: str | Path, device) -> dict:
    """The cached bank (see :func:`bank_path`), built and written atomically when missing or when the file fails
    :func:`check_bank` (saying why); tensors on ``device``, its ``path`` and its ``digest`` (over all it holds)."""
    path = bank_path(teacher_path, size, num_steps, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    teacher_sha256 = file_sha256(teacher_path)
    # runs started together (seeds in a pool) build it once
    with os.fdopen(open_no_follow(f"{path}.lock", os.O_RDWR | os.O_CREAT), "r+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        bank = None
        if path.exists():
            try:
                check_stored_zip(path)
                bank = torch.load(path, map_location="cpu", weights_only=True)
                digest = bank.get("digest") if isinstance(bank, dict) else None
                check_bank(bank, teacher, teacher_sha256, size, num_steps)
            except Exception as exc:  # unreadable, truncated, edited or another teacher's: never used
                why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                say(f"rebuilding {path}: {why[:300]}")
                bank = None
        if bank is None:
            bank = build_bank(teacher, size, num_steps, device)
            record = dict(bank, teacher_sha256=teacher_sha256, num_steps=num_steps)
            digest = content_digest(record)
            buf = io.BytesIO()
            torch.save(dict(record, digest=digest), buf)
            atomic_write_bytes(path, buf.getvalue())
    tensors = {k: bank[k].to(device) for k in ("noise", "target", "labels")}
    return dict(tensors, path=path, digest=digest)


def bank_indices(batch_idx: int, batch: int, size: int, seed: int, dist_info) -> torch.Tensor:
    """The bank entries of global batch ``batch_idx`` for this rank: consecutive slices of per-epoch permutations
    (seeded by the run's seed and the epoch), so each epoch visits every pair once and a resumed run continues the
    same order."""
    local = batch // dist_info.world
    first = batch_idx * batch + dist_info.rank * local
    positions = torch.arange(first, first + local)
    out = torch.empty(local, dtype=torch.long)
    for epoch in positions.div(size, rounding_mode="floor").unique().tolist():
        perm = torch.randperm(size, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
        mask = positions.div(size, rounding_mode="floor") == epoch
        out[mask] = perm[positions[mask] % size]
    return out

"""Where and from which code a computation ran: the checkout's commit and the machine (what the arithmetic of a run
depends on besides its config). A run folder notes both each time training starts or resumes (``parts.jsonl``), so
that a record made later, elsewhere, still says where its run trained."""

from __future__ import annotations

import datetime
import functools
import platform
import subprocess
from pathlib import Path

import torch

from paperlib.assets import ROOT


@functools.lru_cache(maxsize=1)
def code_commit() -> str:
    """The checkout's commit, with '+changes' when paperlib's code differs from it; 'unknown' outside a checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "paperlib"], cwd=ROOT, capture_output=True,
                               text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if head.returncode:
        return "unknown"
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def machine() -> dict:
    """What the arithmetic of a run depends on besides its config: CPU model, torch's CPU capability (the vector
    instructions its kernels use), thread count, torch version and device."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return dict(cpu=model, cpu_capability=torch.backends.cpu.get_cpu_capability(), threads=torch.get_num_threads(),
                torch=torch.__version__, cuda=torch.cuda.get_device_name() if torch.cuda.is_available() else None)


def now() -> str:
    """The time in UTC, to the second (ISO 8601)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def training_part(from_kimg: float) -> dict:
    """What a run folder notes when training starts (``from_kimg`` 0) or resumes: when, from where, which code, which
    machine."""
    return dict(started=now(), from_kimg=from_kimg, code=code_commit(), machine=machine())

"""Shared helpers of the benchmarks: timing by median, peak memory of one measurement, machine facts, JSON out.

Each measurement runs in a fresh child process (``measure_in_child``) so that its peak memory is its own: on CUDA
``torch.cuda.max_memory_allocated``, on CPU the child's peak resident set size (weights included).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing


def median_seconds(fn: Callable[[], None], repeats: int, warmup: int = 1, sync: bool = False) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls after ``warmup`` calls (seconds)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if sync:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if sync:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: CUDA allocations on a GPU, the process's peak resident set on CPU (MiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _child(queue, fn, kwargs):
    try:
        queue.put(("ok", fn(**kwargs)))
    except Exception as exc:  # report, so the parent prints which variant failed and why
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def measure_in_child(fn: Callable[..., dict], **kwargs) -> dict:
    """Run ``fn(**kwargs) -> dict`` in a fresh process (spawned) and return its dict, or dict(error=...)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, fn, kwargs))
    proc.start()
    status, value = queue.get()
    proc.join()
    return value if status == "ok" else dict(error=value)


def _measure_here(fn: Callable[..., dict], **kwargs) -> dict:
    try:
        return fn(**kwargs)
    except Exception as exc:  # report, as measure_in_child does
        return dict(error=f"{type(exc).__name__}: {exc}")


def measure_row(rows: list, label: str, fn: Callable[..., dict], in_process: bool = False, **kwargs) -> dict | None:
    """``measure_in_child(fn, **kwargs)`` (or in this process: CUDA warm-up shared between rows, peak memory as
    ``fn`` resets it), appended to ``rows`` (failures too, so the JSON records them); on failure prints
    ``label failed: why`` and returns None."""
    result = (_measure_here if in_process else measure_in_child)(fn, **kwargs)
    rows.append(result)
    if "error" in result:
        print(f"{label} failed: {result['error']}")
        return None
    return result


def machine() -> dict:
    """Facts that make a figure interpretable: CPU/GPU, threads, torch version."""
    info = dict(platform=platform.platform(), processor=platform.processor() or platform.machine(),
                cpus=os.cpu_count(), threads=torch.get_num_threads(), torch=torch.__version__)
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def write_json(path: str | None, payload: dict) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2))
        print(f"wrote {path}")

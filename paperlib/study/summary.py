"""Numbers over seeds: per-seed results aggregated into one table row (mean, sample sd and the values), curves
recorded during training averaged over seeds, and a table cell's 'mean ± sd'."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def aggregate_runs(results: Sequence[dict], seeds: Sequence, metrics: Sequence[str]) -> dict:
    """One row from per-seed results: each of ``metrics``' mean, ``<metric>_sd`` (sample sd, ddof 1) and
    ``<metric>_runs`` (per seed, in the order of ``seeds``), plus ``seeds``, ``fid_runs``-style lists and the mean of
    ``kimg``, ``train_seconds`` and ``frozen_fraction`` where present. ``num`` is the per-run sample count."""
    row: dict = dict(seeds=list(seeds))
    for key in metrics:
        values = [r[key] for r in results if r.get(key) is not None]
        if len(values) == len(results):
            row[key] = float(np.mean(values))
            row[f"{key}_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
            row[f"{key}_runs"] = [float(v) for v in values]
    for key in ("kimg", "train_seconds", "frozen_fraction", "num", "nfe", "lr"):
        values = [r[key] for r in results if r.get(key) is not None]
        if values:
            row[key] = values[0] if key in ("num", "nfe", "lr") else float(np.mean(values))
    return row


def average_curves(curves: list[dict]) -> dict[str, list[float]]:
    """The mean over seeds of curves as :meth:`~paperlib.store.run_folder.RunFolder.curve` gives them (recorded at the same kimg; the
    discriminator's view where every curve has it), with ``<key>_sd`` lists (sample sd; absent for one curve) and
    ``runs`` (how many curves)."""
    length = min(len(c["kimg"]) for c in curves)
    out: dict = {"kimg": curves[0]["kimg"][:length], "runs": len(curves)}
    keys = [k for k, v in curves[0].items() if k != "kimg" and isinstance(v, list) and all(k in c for c in curves)]
    for key in keys:
        values = np.array([c[key][:length] for c in curves], dtype=float)
        out[key] = values.mean(axis=0).tolist()
        if len(curves) > 1:
            out[f"{key}_sd"] = values.std(axis=0, ddof=1).tolist()
    return out


def mean_sd(row: dict, key: str, digits: int = 2) -> str:
    """'mean ± sd' of a row's metric ('mean' alone for one run, '–' when missing)."""
    if row.get(key) is None or (isinstance(row[key], float) and math.isnan(row[key])):
        return "–"
    sd = row.get(f"{key}_sd")
    return f"{row[key]:.{digits}f}" + (f" ± {sd:.{digits}f}" if sd is not None else "")

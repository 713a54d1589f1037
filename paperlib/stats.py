"""Numbers over seeds: per-seed runs aggregated into one table row, and the test every claim's verdict follows.

The rule, fixed before any run was looked at: a claim compares two groups of per-seed values (or one group with a
fixed reference value) by Welch's t-test; the 95% confidence interval of the difference of means decides. If the
whole interval lies on the side the claim predicts, the claim **holds**; if it lies wholly on the other side, it
**does not hold**; if it contains 0, the verdict is **inconclusive** at this number of seeds.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats as scipy_stats

from paperlib.protocol import METRICS

RULE = ("each claim compares per-seed values by Welch's t-test; if the 95% confidence interval of the difference of "
        "means lies wholly on the side the claim predicts, it **holds**, wholly on the other side, it **does not "
        "hold**, and if it contains 0 the verdict is **inconclusive** at this number of seeds.")


def aggregate_runs(results: Sequence[dict], seeds: Sequence, metrics: Sequence[str] = METRICS) -> dict:
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


def welch_interval(a: Sequence[float], b: Sequence[float] | float, level: float = 0.95) -> dict:
    """Welch's t-test of mean(a) - mean(b) (``b`` a group, or a fixed reference value for a one-sample test):
    dict(diff, low, high, t, df, p). With fewer than 2 values in a group the interval is unbounded."""
    a = np.asarray(a, dtype=float)
    one_sample = np.isscalar(b)
    b_arr = np.asarray([b] if one_sample else b, dtype=float)
    diff = float(a.mean() - b_arr.mean())
    var_a = a.var(ddof=1) / len(a) if len(a) > 1 else math.inf
    var_b = 0.0 if one_sample else (b_arr.var(ddof=1) / len(b_arr) if len(b_arr) > 1 else math.inf)
    se = math.sqrt(var_a + var_b)
    if not math.isfinite(se):
        return dict(diff=diff, low=-math.inf, high=math.inf, t=math.nan, df=math.nan, p=math.nan)
    if se == 0:
        return dict(diff=diff, low=diff, high=diff, t=math.copysign(math.inf, diff) if diff else 0.0, df=math.inf,
                    p=0.0 if diff else 1.0)
    terms = [var_a ** 2 / (len(a) - 1)] + ([] if one_sample else [var_b ** 2 / (len(b_arr) - 1)])
    df = (var_a + var_b) ** 2 / sum(terms)
    half = scipy_stats.t.ppf(0.5 + level / 2, df) * se
    t = diff / se
    return dict(diff=diff, low=diff - half, high=diff + half, t=t, df=df, p=float(2 * scipy_stats.t.sf(abs(t), df)))


def decide(interval: dict, predicts: str) -> str:
    """'holds' / 'does not hold' / 'inconclusive' for a claim that predicts the difference is ``'negative'`` (a
    lower FID) or ``'positive'``, from :func:`welch_interval`'s 95% interval (the module's rule)."""
    if predicts not in ("negative", "positive"):
        raise ValueError(f"predicts must be 'negative' or 'positive', got {predicts!r}")
    below, above = interval["high"] < 0, interval["low"] > 0
    if not below and not above:
        return "inconclusive"
    return "holds" if (below if predicts == "negative" else above) else "does not hold"


def mean_sd(row: dict, key: str, digits: int = 2) -> str:
    """'mean ± sd' of a row's metric ('mean' alone for one run, '–' when missing)."""
    if row.get(key) is None or (isinstance(row[key], float) and math.isnan(row[key])):
        return "–"
    sd = row.get(f"{key}_sd")
    return f"{row[key]:.{digits}f}" + (f" ± {sd:.{digits}f}" if sd is not None else "")

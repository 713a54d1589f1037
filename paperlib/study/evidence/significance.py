"""The tests the protocol decides claims with (``paperlib.study.protocol``): one-sided Welch
t-tests for non-inferiority and superiority, Holm's correction over a family, and the power of a test at given
spreads and seed counts. Lower is better for every metric tested here (FID, near-copy share).

Pure functions of per-seed values; no run, file or protocol constant is read here.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats as scipy_stats


def _welch(groups: Sequence[tuple[float, int]]) -> tuple[float, float]:
    """Standard error of a signed sum of independent group means, each group given as (sd, seed count), and its
    Welch-Satterthwaite degrees of freedom (two groups: mean(a) - mean(b), Welch's t-test)."""
    variances = [sd ** 2 / n for sd, n in groups]
    total = sum(variances)
    if total == 0:
        return 0.0, math.inf
    df = total ** 2 / sum(v ** 2 / (n - 1) for v, (_, n) in zip(variances, groups))
    return math.sqrt(total), df


def one_sided_test(a: Sequence[float], b: Sequence[float], bound: float = 0.0, alpha: float = 0.05) -> dict:
    """Test H0: mean(a) - mean(b) >= ``bound`` against H1: it is below (``bound`` = 0: a beats b; a margin > 0:
    a is non-inferior to b within it), by Welch's t-test.

    ``a``, ``b``: per-seed values, at least 2 each. Returns dict(diff, se, df, p) with p one-sided, the
    ``1 - 2 alpha`` two-sided interval (``low``, ``high``: its ``high`` below ``bound`` is the test rejecting) and the
    95% interval (``low95``, ``high95``)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"a one-sided Welch test needs 2 values per group, got {len(a)} and {len(b)}")
    diff = float(a.mean() - b.mean())
    se, df = _welch([(float(a.std(ddof=1)), len(a)), (float(b.std(ddof=1)), len(b))])
    if se == 0:
        p = 0.0 if diff < bound else 1.0
        return dict(diff=diff, se=0.0, df=df, p=p, low=diff, high=diff, low95=diff, high95=diff)
    p = float(scipy_stats.t.cdf((diff - bound) / se, df))
    half, half95 = (scipy_stats.t.ppf(q, df) * se for q in (1 - alpha, 0.975))
    return dict(diff=diff, se=se, df=df, p=p, low=diff - half, high=diff + half, low95=diff - half95,
                high95=diff + half95)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given (each at most 1; reject where adjusted < alpha)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def power(sd_a: float, n_a: int, sd_b: float, n_b: int, margin: float, alpha: float = 0.05) -> float:
    """Chance that :func:`one_sided_test` rejects at ``alpha`` when the truth lies ``margin`` inside its bound (a
    non-inferiority test with no true difference, or a superiority test with a true improvement of ``margin``), for
    groups of ``n_a`` and ``n_b`` seeds with spreads ``sd_a``, ``sd_b`` (noncentral t with Welch's df)."""
    se, df = _welch([(sd_a, n_a), (sd_b, n_b)])
    if se == 0:
        return 1.0
    return float(scipy_stats.nct.cdf(-scipy_stats.t.ppf(1 - alpha, df), df, -margin / se))


def seeds_needed(sd_a: float, sd_b: float, margin: float, n_b: int | None = None, alpha: float = 0.05,
                 target: float = 0.8, most: int = 1000) -> int:
    """The fewest seeds of ``a`` (and of ``b``, unless its count ``n_b`` is fixed) that give :func:`power` at least
    ``target``; ``most`` + 1 when even ``most`` do not."""
    for n in range(2, most + 1):
        if power(sd_a, n, sd_b, n_b or n, margin, alpha) >= target:
            return n
    return most + 1


def machine_effect(a_by_kind: dict[str, Sequence[float]], b_by_kind: dict[str, Sequence[float]]) -> dict | None:
    """Whether a comparison's difference mean(a) - mean(b) depends on the CPU kind: ``a_by_kind`` and ``b_by_kind``
    map each kind to its per-seed values on that side. With exactly two kinds that give at least 2 seeds to both
    sides, Welch's two-sided test of (a - b on the first kind) - (a - b on the second), the standard error summed
    over the four groups and its Welch-Satterthwaite degrees of freedom: dict(kinds, per_kind (each kind's
    difference), diff, p). None otherwise. A kind that shifts both sides alike is no effect on the difference."""
    kinds = [k for k in a_by_kind if len(a_by_kind[k]) >= 2 and len(b_by_kind.get(k, ())) >= 2]
    if len(kinds) != 2:
        return None
    groups = [np.asarray(side[k], dtype=float) for k in kinds for side in (a_by_kind, b_by_kind)]
    per_kind = [float(groups[0].mean() - groups[1].mean()), float(groups[2].mean() - groups[3].mean())]
    se, df = _welch([(float(g.std(ddof=1)), len(g)) for g in groups])
    diff = per_kind[0] - per_kind[1]
    if se == 0:
        p = 1.0 if diff == 0 else 0.0
    else:
        p = float(2 * scipy_stats.t.sf(abs(diff) / se, df))
    return dict(kinds=kinds, per_kind=dict(zip(kinds, per_kind)), diff=diff, p=p)

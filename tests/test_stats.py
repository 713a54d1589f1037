"""Numbers over seeds: the aggregation of per-seed runs into a row and the Welch test that decides the claims."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from paperlib.study.summary import aggregate_runs, decide, mean_sd, welch_interval


def test_welch_interval_agrees_with_scipy():
    a, b = [5.0, 5.4, 4.9], [6.1, 7.0, 6.4, 6.6]
    got = welch_interval(a, b)
    expected = scipy_stats.ttest_ind(a, b, equal_var=False)
    assert got["t"] == pytest.approx(expected.statistic) and got["p"] == pytest.approx(expected.pvalue)
    assert got["low"] < got["diff"] < got["high"] < 0
    one = welch_interval([1.1, 0.9, 1.0, 1.2], 1.0)  # one-sample against a fixed value
    assert one["p"] == pytest.approx(scipy_stats.ttest_1samp([1.1, 0.9, 1.0, 1.2], 1.0).pvalue)
    single = welch_interval([3.0], [1.0, 2.0])
    assert math.isinf(single["low"]) and decide(single, "negative") == "inconclusive"  # one run decides nothing


def test_decide_has_three_outcomes():
    assert decide(dict(low=-2, high=-1), "negative") == "holds"
    assert decide(dict(low=1, high=2), "negative") == "does not hold"
    assert decide(dict(low=-1, high=2), "negative") == "inconclusive"
    assert decide(dict(low=1, high=2), "positive") == "holds"
    with pytest.raises(ValueError, match="predicts"):
        decide(dict(low=1, high=2), "lower")


def test_aggregate_keeps_every_seed():
    runs = [dict(fid=3.0, fid_test=5.0, recall=0.5, kimg=48.0, num=100, lr=1e-3), dict(fid=5.0, fid_test=7.0, recall=0.7,
                                                                                     kimg=48.0, num=100, lr=1e-3)]
    row = aggregate_runs(runs, [1, 2])
    assert row["fid"] == 4.0 and row["fid_sd"] == pytest.approx(np.std([3, 5], ddof=1)) and row["fid_runs"] == [3, 5]
    assert row["seeds"] == [1, 2] and row["num"] == 100 and row["kimg"] == 48.0 and "precision" not in row
    assert mean_sd(row, "fid") == "4.00 ± 1.41" and mean_sd(aggregate_runs(runs[:1], [1]), "fid") == "3.00"

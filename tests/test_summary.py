"""Numbers over seeds: per-seed results aggregated into a row, and curves averaged over seeds."""

import numpy as np
import pytest

from paperlib.study.summary import aggregate_runs, average_curves, mean_sd

METRICS = ("fid", "fid_test", "precision", "recall")


def test_aggregate_keeps_every_seed():
    runs = [dict(fid=3.0, fid_test=5.0, recall=0.5, kimg=48.0, num=100, lr=1e-3), dict(fid=5.0, fid_test=7.0, recall=0.7,
                                                                                     kimg=48.0, num=100, lr=1e-3)]
    row = aggregate_runs(runs, [1, 2], METRICS)
    assert row["fid"] == 4.0 and row["fid_sd"] == pytest.approx(np.std([3, 5], ddof=1)) and row["fid_runs"] == [3, 5]
    assert row["seeds"] == [1, 2] and row["num"] == 100 and row["kimg"] == 48.0 and "precision" not in row
    assert mean_sd(row, "fid") == "4.00 ± 1.41" and mean_sd(aggregate_runs(runs[:1], [1], METRICS), "fid") == "3.00"


def test_curves_are_averaged_over_every_key_all_seeds_logged():
    a = dict(kimg=[8, 16, 24], fid=[3.0, 2.0, 1.0], d_logit_real=[0.1, 0.2, 0.3], num=2000)
    b = dict(kimg=[8, 16], fid=[5.0, 4.0])  # a shorter curve, without the discriminator's view
    mean = average_curves([a, b])
    assert mean == dict(kimg=[8, 16], runs=2, fid=[4.0, 3.0], fid_sd=[pytest.approx(2 ** 0.5)] * 2)
    alone = average_curves([a])
    assert alone["d_logit_real"] == [0.1, 0.2, 0.3] and "fid_sd" not in alone and "num" not in alone

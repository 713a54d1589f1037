"""The FID table's format, apart from the machinery that fills it: the row type as ``table.json`` stores it and
its rendering as markdown. Imports no training code, so drawing a table never loads the training stack."""

from __future__ import annotations

import math
from typing import TypedDict

from paperlib.study.summary import mean_sd


class Row(TypedDict, total=False):
    """One row of a FID table as table.json stores it. ``kind`` is set where the row is made, never derived from
    its label: 'teacher', 'gdd', 'gddi', 'instance' or 'real'."""

    row: str                # the label shown in the table
    kind: str
    nfe: int | None         # network evaluations per sample (None for real data)
    checkpoint: str         # the network scored
    run_dir: str            # trained rows: the folder of the row's runs (one per seed)
    run_dirs: list          # trained rows at smoke scale: each seed's run
    curve: dict             # smoke: FID during training, mean over seeds (paperlib.study.summary.average_curves)
    progress: str           # smoke: the first seed's samples over training (paperlib.study.tables.build.collect_progress)
    seeds: list             # trained rows: training seeds; teacher rows: the seed ranges sampled
    fid_runs: list          # per seed (or seed range), likewise <metric>_runs for every metric
    fid_sd: float | None    # sample sd over seeds, likewise <metric>_sd
    snapshot: str           # paper scale: 'final' or 'best'
    lr: float               # trained rows: the generator's learning rate
    freeze_level: int       # trained rows: 0 (GDD) or 1 (GDD-I)
    fid: float              # against the training split (the paper's protocol)
    fid_test: float         # against the held-out split (digits)
    kid: float
    precision: float
    recall: float
    memorisation: float     # nearest-training-image distance ratio: 1 = no copying, 0 = copies
    num: int                # samples the metrics come from (per seed)
    kimg: float | None      # training images seen, in thousands
    train_seconds: float | None
    sample_seconds: float   # teacher rows: time to sample them
    frozen_fraction: float
    reported_fid: float | None
    reported_source: str


def format_number(value, digits: int = 2) -> str:
    """A table cell: fixed-point with ``digits`` decimals (no exponent notation), '–' for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def to_markdown(table: dict) -> str:
    """The table as markdown, one row per model (mean ± sd over seeds where a row has several), with the paper's
    reported FID beside ours."""
    head = ("| row | FID (train) | FID (held-out) | KID | precision | recall | memorisation | runs | training kimg | "
            "train s | frozen | reported FID |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    decimals = dict(fid=2, fid_test=2, kid=1, precision=3, recall=3, memorisation=3)
    lines = []
    for r in table["rows"]:
        frozen = r.get("frozen_fraction")
        cells = [r["row"], *(mean_sd(r, k, d) for k, d in decimals.items()), str(len(r.get("seeds") or [1])),
                 format_number(r.get("kimg"), 0), format_number(r.get("train_seconds"), 0),
                 "–" if frozen is None else f"{100 * frozen:.1f}%", format_number(r.get("reported_fid"))]
        lines.append("| " + " | ".join(cells) + " |")
    sources = [f"{r['row']}: {r['reported_source']}" for r in table["rows"] if r.get("reported_fid") is not None]
    note = (f"\n{table['dataset']} at {table['scale']} scale; {table['eval_num']} samples per model and run (seeds 0..; "
            f"the teacher's NFE-35 row: one disjoint range of seeds per run), features: {table['feature_net']}. "
            f"Columns: 'FID (train)' against the training split (the paper's protocol), 'FID (held-out)' against "
            f"images no model saw; 'KID': clean-fid's unbiased kernel distance (cubic kernel) in the same features, "
            f"raw units (it scales with the features' magnitude and can dip below 0 when two sets are alike); "
            f"'precision'/'recall': k-NN manifold precision and recall (k = 3) against the training split; "
            f"'memorisation': mean distance of samples to their nearest training image over that of held-out images "
            f"(about 1 for fresh data, well below 1 for copies); 'runs': training seeds (or seed ranges) behind a "
            f"row, shown as mean ± sample sd; 'train s': training wall time per run, evaluations excluded; "
            f"'frozen': the generator's frozen fraction of parameters.")
    if table["scale"] == "paper":
        note += (" Trained rows: the final EMA generator and the snapshot (every 250 kimg) of lowest FID, which is how"
                 " the authors chose their released checkpoints; the reported FIDs stand beside the best snapshot.")
    else:
        note += (" Trained rows are the final EMA generator (no snapshot selection at this scale)."
                 " FID here is in that feature space and not comparable with the reported Inception FIDs, which are"
                 " the paper's numbers for the setting this dataset stands in for.")
    if sources:
        note += " Reported: " + "; ".join(sources) + "."
    return head + "\n".join(lines) + "\n" + note + "\n"

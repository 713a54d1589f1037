"""Continue the unconditional mini table's seed-1 GDD and GDD-I runs from their 48-kimg training state to the
paper's number of passes (144 kimg, about 100 over the 1,437 training digits), in copies under
runs/mini/long144/, recording FID every 8 kimg (2,000 samples, training and held-out splits) and evaluating the
final generators on 10,000 samples. Writes results/digits/mini/long144.json and
figures/training_curves_digits_mini_144kimg.png. Needs the table's runs (./run_all.sh mini); about 30 minutes on
2 CPU cores. Run from the checkout: python scripts/extend_mini_to_144kimg.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from paperlib.curves import load_curve, plot_training_curves
from paperlib.io import atomic_write_bytes
from paperlib.pool import Job, run_jobs
from paperlib.tables import MINI_TEACHERS

KIMG, SEED = 144, 1
NAMES = {"gdd": "GDD", "gddi": "GDD-I"}


def main() -> None:
    jobs = []
    for method in NAMES:
        source = Path(f"runs/mini/digits/digits-{method}/seed{SEED}")
        run_dir = Path(f"runs/mini/long{KIMG}/digits-{method}/seed{SEED}")
        if not run_dir.exists():
            if not (source / "result.json").exists():
                raise FileNotFoundError(f"{source}: the table's finished run is needed (./run_all.sh mini)")
            shutil.copytree(source, run_dir)
            (run_dir / "result.json").unlink()  # its 48-kimg evaluation
        jobs.append(Job(f"digits {NAMES[method]} seed {SEED} to {KIMG} kimg", f"digits-{method}", str(run_dir),
                        dict(teacher=MINI_TEACHERS[False], conditional=False, device="auto", seed=SEED,
                             total_kimg=KIMG), fid_every_kimg=8.0))
    results = run_jobs(jobs, workers=2, threads=1)
    rows = {NAMES[m]: dict(final={k: r[k] for k in ("kimg", "num", "fid", "fid_test", "precision", "recall",
                                                      "memorisation", "train_seconds")},
                           curve=load_curve(r["run_dir"]), curve_num=jobs[0].curve_num)
            for m, r in zip(NAMES, results)}
    atomic_write_bytes("results/digits/mini/long144.json", json.dumps(dict(seed=SEED, rows=rows), indent=1).encode())
    plot_training_curves({name: row["curve"] for name, row in rows.items()},
                         "figures/training_curves_digits_mini_144kimg.png",
                         f"digits, seed {SEED} continued from the table's 48 kimg to {KIMG} kimg "
                         f"(FID of {jobs[0].curve_num} samples every 8 kimg)")
    for name, row in rows.items():
        f = row["final"]
        print(f"{name}: {f['kimg']:g} kimg, FID train {f['fid']:.2f}, held-out {f['fid_test']:.2f}, recall "
              f"{f['recall']:.3f}, memorisation {f['memorisation']:.3f} ({f['num']} samples)")


if __name__ == "__main__":  # the pool's worker processes import this file
    main()

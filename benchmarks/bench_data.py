"""Data loading: images/s that the training loop's loader delivers from a dataset zip in EDM's format.

Writes a zip of random uint8 images (noise compresses worst, so PNG decoding is at its slowest), then draws global
batches through ``paperlib.training.BatchStream`` exactly as training does (per-epoch permutation, DataLoader workers,
pinned memory on CUDA) with several worker counts. Compare the figure with what one GPU consumes: the CIFAR-10
GDD-I preset trains at 83.6 img/s on one H200 (``README.md``), so a loader under that rate would stall the loop.

    python benchmarks/bench_data.py [--resolutions 32,64] [--workers 0,1,2] [--images 4096] [--batch 64] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from common import machine, measure_row, write_json

GPU_CONSUMPTION = 83.6  # img/s of the CIFAR-10 GDD-I preset on one H200 (results/iteration-cifar10-h200.json)


def run_loader(path: str, workers: int, batch: int, batches: int) -> dict:
    """Images/s of ``batches`` global batches from ``path`` with ``workers`` loader processes (child process)."""
    import torch

    from paperlib.batches import BatchStream
    from paperlib.data import open_dataset
    from paperlib.devices import DistInfo

    torch.set_num_threads(1)  # the loop's own thread count is the trainer's business; workers decode in parallel
    dataset = open_dataset(path)
    stream = BatchStream(dataset, batch, seed=0, dist_info=DistInfo(), device=torch.device("cpu"),
                         num_workers=workers).batches(0)
    next(stream)  # workers start and fill their prefetch queue
    start = time.perf_counter()
    for _ in range(batches):
        images, _ = next(stream)
    seconds = time.perf_counter() - start
    return dict(resolution=dataset.resolution, workers=workers, batch=batch, images_per_second=batches * batch / seconds,
                shape=list(images.shape))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", default="32,64")
    parser.add_argument("--workers", default="0,1,2")
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from paperlib.data import write_image_zip

    rows = []
    print(f"{'resolution':<12}{'workers':>8}{'img/s':>10}{'x one GPU':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for resolution in (int(r) for r in args.resolutions.split(",")):
            rng = np.random.default_rng(0)
            images = rng.integers(0, 256, size=(args.images, resolution, resolution, 3), dtype=np.uint8)
            labels = rng.integers(0, 10, size=args.images)
            path = str(write_image_zip(f"{tmp}/data-{resolution}.zip", images, labels))
            for workers in (int(w) for w in args.workers.split(",")):
                r = measure_row(rows, f"{resolution:<12}{workers:>8}", run_loader, path=path, workers=workers,
                                batch=args.batch, batches=args.batches)
                if r is None:
                    continue
                print(f"{resolution:<12}{workers:>8}{r['images_per_second']:>10.0f}"
                      f"{r['images_per_second'] / GPU_CONSUMPTION:>10.1f}x")
    write_json(args.out, dict(machine=machine(), gpu_consumption_images_per_second=GPU_CONSUMPTION, rows=rows))


if __name__ == "__main__":
    main()

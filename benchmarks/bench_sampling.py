"""Sampling throughput: the one-step generator against EDM's Heun sampler at 35 NFE, same network.

The one-step generator is G(z) = D(80 z; 80); the teacher samples with Heun, 18 steps (NFE 35), through
``paperlib.diffusion.generate`` (one random generator per seed, as in use). Images per second and peak memory.

    python benchmarks/bench_sampling.py [--widths mini,cifar10] [--batch 64] [--device cpu|cuda] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import time

from common import machine, measure_row, peak_memory_mb, write_json


def run_sampler(width: str, steps: int | None, batch: int, device: str, repeats: int) -> dict:
    """Images/s of one-step generation (steps None) or Heun with ``steps`` steps (child process)."""
    import torch

    from paperlib.devices import configure_backends
    from paperlib.diffusion import generate
    from paperlib.precond import EDMPrecond, GDDPrecond
    from paperlib.presets import GENERATOR_CONFIGS

    torch.manual_seed(0)
    dev = torch.device(device)
    configure_backends(dev)  # TF32 off, cuDNN autotuning on (CUDA), as training
    arch = GENERATOR_CONFIGS[width]
    net = (GDDPrecond if steps is None else EDMPrecond)(**arch).to(dev).eval()
    seeds = list(range(batch))
    generate(net, seeds, num_steps=steps, device=dev)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        out = generate(net, seeds, num_steps=steps, device=dev)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / repeats
    return dict(width=width, sampler="one-step" if steps is None else f"Heun NFE {2 * steps - 1}", nfe=out.nfe,
                batch=batch, images_per_second=batch / seconds, peak_memory_mb=peak_memory_mb(dev))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="mini,cifar10")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    rows = []
    print(f"{'width':<10}{'sampler':<14}{'img/s':>10}{'peak MiB':>10}")
    for width in args.widths.split(","):
        pair = []
        for steps, repeats in ((None, args.repeats), (18, 1)):
            r = measure_row(rows, f"{width:<10}", run_sampler, width=width, steps=steps, batch=args.batch,
                            device=args.device, repeats=repeats)
            if r is None:
                continue
            pair.append(r)
            print(f"{width:<10}{r['sampler']:<14}{r['images_per_second']:>10.1f}{r['peak_memory_mb']:>10.0f}")
        if len(pair) == 2:
            print(f"{width}: one-step sampling is {pair[0]['images_per_second'] / pair[1]['images_per_second']:.1f}x the "
                  f"images/s of Heun at 35 NFE")
    write_json(args.out, dict(machine=machine(), device=args.device, rows=rows))


if __name__ == "__main__":
    main()

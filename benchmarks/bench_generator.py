"""Time the full-width CIFAR-10 NCSN++ one-step generator (56.4M parameters) on this machine.

Forward without grad and forward+backward, batch 8 at sigma = 80, median of several runs; prints a table and
writes JSON. The authors' implementation measured 0.96 s and 2.57 s on a 2-core CPU machine of this kind.

    python benchmarks/bench_generator.py [--batch 8] [--repeats 5] [--channels-last] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from paperlib.precond import GDDPrecond

CIFAR_NCSNPP = dict(img_resolution=32, img_channels=3, model_type="SongUNet", embedding_type="fourier",
                    encoder_type="residual", decoder_type="standard", channel_mult_noise=2,
                    resample_filter=[1, 3, 3, 1], model_channels=128, channel_mult=[2, 2, 2], dropout=0.0)
REFERENCE_SECONDS = {"forward": 0.96, "forward_backward": 2.57}  # authors' code, 2-core CPU (issue 2)


def median_seconds(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    torch.manual_seed(0)
    net = GDDPrecond(**CIFAR_NCSNPP).train()
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    net = net.to(memory_format=memory_format)
    z = torch.randn(args.batch, 3, 32, 32).to(memory_format=memory_format)
    params = sum(p.numel() for p in net.parameters())

    def forward():
        with torch.no_grad():
            net.generate(z)

    def forward_backward():
        net.zero_grad(set_to_none=True)
        net.generate(z).square().mean().backward()

    results = dict(machine=platform.processor() or platform.machine(), threads=torch.get_num_threads(),
                   torch=torch.__version__, params=params, batch=args.batch, channels_last=args.channels_last,
                   forward=median_seconds(forward, args.repeats),
                   forward_backward=median_seconds(forward_backward, args.repeats))
    print(f"CIFAR-10 NCSN++ generator, {params:,} parameters, batch {args.batch}, sigma 80, "
          f"{results['threads']} threads, torch {torch.__version__}")
    print(f"{'pass':<18}{'paperlib (s)':>14}{'authors (s)':>14}{'ratio':>8}")
    for key in ("forward", "forward_backward"):
        print(f"{key:<18}{results[key]:>14.3f}{REFERENCE_SECONDS[key]:>14.2f}{results[key] / REFERENCE_SECONDS[key]:>8.2f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()

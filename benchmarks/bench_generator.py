"""Generator forward and forward+backward per image at every width, in each variant, with peak memory.

Widths: the mini generator and the paper's (CIFAR-10 NCSN++ 56.4M, 64x64 NCSN++ 62.8M, ImageNet ADM 295.9M
parameters), one-step evaluation at sigma = 80, training mode. Variants, compared in the same run: fp32, fp32
channels-last, bf16 (paperlib's bf16 path, GroupNorm and softmax in fp32, as ``TrainConfig.bf16``), and on
request ``compile`` (torch.compile of the backbone; slow to build, so not in the default set). Each
(width, variant) runs in its own process so its peak memory is its own. The authors' implementation measured
0.96 s forward and 2.57 s forward+backward for CIFAR-10 at batch 8 on a 2-core CPU machine of this kind.

    python benchmarks/bench_generator.py [--widths mini,cifar10] [--variants fp32,channels_last,bf16] [--batch 8]
        [--repeats 5] [--device cpu|cuda] [--out benchmarks/results/generator.json]
"""

from __future__ import annotations

import argparse
import time

from common import machine, measure_row, median_seconds, peak_memory_mb, write_json

REFERENCE_CIFAR_BATCH8 = {"forward": 0.96, "forward_backward": 2.57}  # seconds, authors' code, 2-core CPU
VARIANTS = ("fp32", "channels_last", "bf16")


def run_variant(width: str, variant: str, batch: int, repeats: int, device: str) -> dict:
    """Time one width in one variant (in a child process): seconds per batch and per image, peak memory."""
    import torch

    from paperlib.devices import configure_backends
    from paperlib.precond import GDDPrecond
    from paperlib.presets import GENERATOR_CONFIGS

    torch.manual_seed(0)
    dev = torch.device(device)
    configure_backends(dev)  # TF32 off, cuDNN autotuning on (CUDA), as training
    cfg = GENERATOR_CONFIGS[width]
    net = GDDPrecond(**cfg).to(dev).train()
    fmt = torch.channels_last if variant == "channels_last" else torch.contiguous_format
    net = net.to(memory_format=fmt)
    z = torch.randn(batch, cfg["img_channels"], cfg["img_resolution"], cfg["img_resolution"], device=dev)
    z = z.to(memory_format=fmt)
    labels = torch.eye(cfg["label_dim"], device=dev)[torch.arange(batch) % cfg["label_dim"]] if cfg.get("label_dim") else None
    if variant == "bf16":  # paperlib's bf16 path (TrainConfig.bf16): GroupNorm and softmax stay fp32
        net.use_fp16 = net.bf16_on_cpu = True
    if variant == "compile":  # torch.compile of the backbone; the warm-up call pays for compiling
        net.model.compile()
    sync = dev.type == "cuda"

    def forward():
        with torch.no_grad():
            net.generate(z, labels)

    def forward_backward():
        net.zero_grad(set_to_none=True)
        net.generate(z, labels).square().mean().backward()

    started = time.perf_counter()
    fwd = median_seconds(forward, repeats, sync=sync)
    fwd_bwd = median_seconds(forward_backward, repeats, sync=sync)
    total = time.perf_counter() - started  # includes compiling, for the compile variant
    return dict(width=width, variant=variant, params=sum(p.numel() for p in net.parameters()), batch=batch,
                forward_s=fwd, forward_backward_s=fwd_bwd, forward_ms_per_image=1e3 * fwd / batch,
                forward_backward_ms_per_image=1e3 * fwd_bwd / batch, peak_memory_mb=peak_memory_mb(dev),
                total_seconds=total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="mini,cifar10,64x64,imagenet-64")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    unknown = sorted(set(args.variants.split(",")) - {*VARIANTS, "compile"})
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; expected some of {[*VARIANTS, 'compile']}")

    rows = []
    print(f"{'width':<12}{'variant':<15}{'params':>13}{'fwd s/batch':>13}{'fwd+bwd s/batch':>17}"
          f"{'fwd ms/img':>12}{'fwd+bwd ms/img':>16}{'peak MiB':>10}")
    for width in args.widths.split(","):
        for variant in args.variants.split(","):
            r = measure_row(rows, f"{width:<12}{variant:<15}", run_variant, width=width, variant=variant,
                            batch=args.batch, repeats=args.repeats, device=args.device)
            if r is None:
                continue
            print(f"{width:<12}{variant:<15}{r['params']:>13,}{r['forward_s']:>13.3f}{r['forward_backward_s']:>17.3f}"
                  f"{r['forward_ms_per_image']:>12.1f}{r['forward_backward_ms_per_image']:>16.1f}{r['peak_memory_mb']:>10.0f}")
    cifar = [r for r in rows if r.get("width") == "cifar10" and args.batch == 8 and args.device == "cpu"]
    for r in cifar:
        print(f"CIFAR-10 batch 8, {r['variant']}: forward {r['forward_s'] / REFERENCE_CIFAR_BATCH8['forward']:.2f}x, "
              f"forward+backward {r['forward_backward_s'] / REFERENCE_CIFAR_BATCH8['forward_backward']:.2f}x "
              f"the authors' implementation")
    write_json(args.out, dict(machine=machine(), device=args.device, reference_cifar_batch8=REFERENCE_CIFAR_BATCH8,
                              rows=rows))


if __name__ == "__main__":
    main()

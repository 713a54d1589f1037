"""One full GDD iteration against one GDD-I iteration of the same preset, with peak memory.

An iteration is what the training loop does per batch: the generator step, the discriminator step on fresh fakes,
lazy R1 (every 16 iterations, so its cost is amortised by timing 16 consecutive iterations that contain one) and
the EMA update; it runs the real ``paperlib.training`` objective. Widths: mini (small discriminator, batch 64),
CIFAR-10 (projected discriminator with random backbone weights, batch 8 on CPU) and mini-projected (the mini presets'
projected discriminator on the shipped digits backbones, batch 64, BatchNorm over 64). GDD-I freezes the paper's set
(``paperlib.freezing`` level 1), so its frozen weights get no gradient, no optimizer state and no EMA work.

Speed options of ``TrainConfig`` can be switched on for both methods: ``--tf32`` (CUDA), ``--channels-last`` and
``--compile`` (the generator's backbone; the warm-up iteration pays for compiling and is not timed). ``--modes
faithful,fast`` measures each method also with the opt-in fast projected discriminator (``fast_d``: bf16 feature
networks, channels-last, compiled on CUDA, TF32); mode ``fast+compile`` is fast_d with the generator's backbone
compiled as well (so a faithful row in the same run keeps its eager generator). ``--in-process`` runs every row in
this process (one cuDNN autotuning for all rows, which share shapes; peak memory is reset per row), for short GPU
leases.

    python benchmarks/bench_iteration.py [--widths mini,cifar10] [--methods gdd,gdd-i] [--modes faithful,fast,fast+compile]
        [--device cpu|cuda] [--bf16] [--tf32] [--channels-last] [--compile] [--batch B] [--in-process] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

from common import machine, measure_row, peak_memory_mb, write_json

SETTINGS = {"mini": dict(batch=64, discriminator="small", discriminator_kwargs={}),
            # the mini presets' discriminator: the paper's projected one with the shipped digits backbones
            "mini-projected": dict(arch="mini", batch=64, discriminator="projected", bn_group=64,
                                   discriminator_kwargs=dict(backbones="digits", width=0.125)),
            "cifar10": dict(batch=8, discriminator="projected", discriminator_kwargs=dict(backbones="vgg16_bn+lite0"))}


def print_profile(device, iteration, rows: int = 25) -> None:
    """Profile two calls of ``iteration`` and print the operators that took the most device (or CPU) time."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(2):
            iteration()
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=60), flush=True)


def run_iterations(width: str, freeze_level: int, device: str, iterations: int, batch: int | None, options: dict,
                   threads: int = 0, profile: bool = False) -> dict:
    """Build a random teacher at ``width``, then time ``iterations`` GDD iterations after one warm-up (child process;
    ``threads`` torch threads, 0 for torch's default), each on its own so that the lazy-R1 iteration is seen apart;
    ``profile``: then print a profile of two iterations without R1."""
    import copy

    import torch

    from paperlib.batches import SharedNoise
    from paperlib.config import TrainConfig
    from paperlib.data import digits_dataset
    from paperlib.devices import DistInfo, configure_backends
    from paperlib.objectives import GDDObjective, speed_up
    from paperlib.precond import EDMPrecond
    from paperlib.presets import GENERATOR_CONFIGS
    from paperlib.store.checkpoints import save_network
    from paperlib.training import ema_update

    warnings.simplefilter("ignore")  # random backbone weights are intended here
    t0 = time.perf_counter()
    torch.manual_seed(0)
    dev = torch.device(device)
    configure_backends(dev, options.get("tf32", False) or options.get("fast_d", False))
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    if threads:
        torch.set_num_threads(threads)
    setting = dict(SETTINGS[width], **({"batch": batch} if batch else {}))
    arch = GENERATOR_CONFIGS[setting.pop("arch", width)]
    with tempfile.TemporaryDirectory() as tmp:
        teacher = f"{tmp}/teacher.safetensors"
        save_network(EDMPrecond(**arch), teacher)
        cfg = TrainConfig(objective="gdd", teacher=teacher, freeze_level=freeze_level, batch=setting["batch"],
                          discriminator=setting["discriminator"], discriminator_kwargs=setting["discriminator_kwargs"],
                          bn_group=setting.get("bn_group", 0), r1_gamma=1e-4, r1_interval=16, device=device, **options)
        # mini-projected trains on the digits, whose frozen features the discriminator then caches (as a mini run)
        dataset = digits_dataset("train", conditional=False) if width == "mini-projected" else None
        objective = GDDObjective(cfg, DistInfo(), dataset, dev)
    ema = copy.deepcopy(objective.net).eval().requires_grad_(False)
    speed_up(objective, cfg)
    noise = SharedNoise(1, DistInfo(), dev)
    shape = (cfg.batch, arch["img_channels"], arch["img_resolution"], arch["img_resolution"])
    images = (torch.stack([dataset[i][0] for i in range(cfg.batch)]).to(dev) if dataset is not None
              else torch.rand(shape, device=dev) * 2 - 1)
    if cfg.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.eye(arch["label_dim"], device=dev)[torch.arange(cfg.batch) % arch["label_dim"]] if arch.get("label_dim") else None

    def iteration(k: int) -> None:
        objective.step(k, k * cfg.batch, images, labels, noise)
        ema_update(ema, objective.net, 0.999)

    def synchronize() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    print(f"  {width} level {freeze_level}: set up in {time.perf_counter() - t0:.1f}s", flush=True)
    t0 = time.perf_counter()
    iteration(1)  # warm-up (no R1; cuDNN autotuning on CUDA, compiling when --compile)
    iteration(16)  # and the R1 shapes
    synchronize()
    print(f"  {width} level {freeze_level}: warm-up in {time.perf_counter() - t0:.1f}s", flush=True)
    times = []
    for k in range(1, iterations + 1):  # contains iteration 16: one lazy R1 per 16
        start = time.perf_counter()
        iteration(k)
        synchronize()
        times.append(time.perf_counter() - start)
    seconds = sum(times) / iterations
    r1_times = [t for k, t in enumerate(times, 1) if k % 16 == 0]
    plain = sorted(t for k, t in enumerate(times, 1) if k % 16)
    if profile:
        print_profile(dev, lambda: iteration(1))
    trainable = sum(p.numel() for p in objective.net.parameters() if p.requires_grad)
    mode = ("fast+compile" if cfg.compile else "fast") if cfg.fast_d else "faithful"
    return dict(width=width, method="GDD-I" if freeze_level else "GDD", mode=mode,
                options=options, batch=cfg.batch, seconds_per_iteration=seconds,
                median_seconds_without_r1=plain[len(plain) // 2], r1_iteration_seconds=r1_times,
                images_per_second=cfg.batch / seconds, trainable_params=trainable,
                params=sum(p.numel() for p in objective.net.parameters()), peak_memory_mb=peak_memory_mb(dev))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="mini,cifar10")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--methods", default="gdd,gdd-i", help="gdd (freeze level 0) and/or gdd-i (level 1)")
    parser.add_argument("--bf16", action="store_true", help="generator in bf16 (as the paper presets on CUDA)")
    parser.add_argument("--tf32", action="store_true", help="TF32 for fp32 convolutions and matmuls (CUDA)")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile the generator's backbone")
    parser.add_argument("--modes", default="faithful", help="faithful, fast (the opt-in fast_d discriminator) and/or "
                        "fast+compile (fast_d and the generator compiled)")
    parser.add_argument("--in-process", action="store_true", help="measure every row in this process")
    parser.add_argument("--iterations", type=int, default=16)
    parser.add_argument("--batch", type=int, default=None, help="override the per-width batch")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default; mini runs use 1)")
    parser.add_argument("--profile", action="store_true", help="print each row's operator profile (2 iterations)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    options = dict(bf16=args.bf16, tf32=args.tf32, channels_last=args.channels_last, compile=args.compile)
    methods, modes = args.methods.split(","), args.modes.split(",")
    if not set(methods) <= {"gdd", "gdd-i"}:
        parser.error(f"--methods {args.methods!r}: expected gdd and/or gdd-i, comma-separated")
    if not set(modes) <= {"faithful", "fast", "fast+compile"}:
        parser.error(f"--modes {args.modes!r}: expected faithful, fast and/or fast+compile, comma-separated")
    levels = [{"gdd": 0, "gdd-i": 1}[m] for m in methods]
    rows = []
    print(f"options: {options}")
    print(f"{'width':<15}{'method':<8}{'mode':<13}{'batch':>6}{'s/iter':>9}{'img/s':>9}{'no R1 s':>9}{'R1 s':>7}"
          f"{'trained params':>16}{'peak MiB':>10}")
    for width in args.widths.split(","):
        seconds = {}
        for mode in modes:
            for level in levels:
                label = f"{width:<15}{'GDD-I' if level else 'GDD':<8}{mode:<13}"
                row_options = dict(options, fast_d=mode != "faithful", compile=args.compile or mode == "fast+compile")
                kwargs = dict(width=width, freeze_level=level, device=args.device, iterations=args.iterations,
                              batch=args.batch, options=row_options, threads=args.threads, profile=args.profile)
                r = measure_row(rows, label, run_iterations, in_process=args.in_process, **kwargs)
                if r is None:
                    continue
                seconds[(r["method"], mode)] = r["seconds_per_iteration"]
                r1 = max(r["r1_iteration_seconds"], default=float("nan"))
                print(f"{label}{r['batch']:>6}{r['seconds_per_iteration']:>9.3f}{r['images_per_second']:>9.1f}"
                      f"{r['median_seconds_without_r1']:>9.3f}{r1:>7.2f}{r['trainable_params']:>16,}"
                      f"{r['peak_memory_mb']:>10.0f}", flush=True)
        for mode in modes:
            if ("GDD", mode) in seconds and ("GDD-I", mode) in seconds:
                print(f"{width} {mode}: GDD-I iteration is {seconds['GDD', mode] / seconds['GDD-I', mode]:.2f}x as fast as GDD")
        for method in ("GDD", "GDD-I"):
            for mode in modes:
                if mode != "faithful" and (method, "faithful") in seconds and (method, mode) in seconds:
                    print(f"{width} {method}: {mode} {seconds[method, 'faithful'] / seconds[method, mode]:.2f}x as fast "
                          f"as faithful")
    write_json(args.out, dict(machine=machine(), device=args.device, options=options, rows=rows))


if __name__ == "__main__":
    main()

"""One training loop for every objective (:mod:`paperlib.objectives`): EDM denoising (teachers), GDD adversarial
fine-tuning (GDD-I when frozen) and instance distillation.

Progress is counted in images. A run is fully described by its :class:`~paperlib.config.TrainConfig`, saved in its
folder (:class:`~paperlib.store.run_folder.RunFolder`), which also restores and snapshots it: ``resume=True``
continues from the newest training state (networks, EMA, optimizers, discriminator, data position and every random
state), so that on CPU a killed and resumed run ends bit-identical to an uninterrupted one. Under torchrun each rank
takes a contiguous slice of every global batch, gradients are averaged across ranks before each step, and rank 0
writes.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from tqdm import tqdm

from paperlib.batches import BatchStream, SharedNoise
from paperlib.config import TrainConfig
from paperlib.devices import DistInfo, configure_backends, init_distributed, resolve_device
from paperlib.objectives import Objective, build_objective, speed_up
from paperlib.store.checkpoints import weights_identity
from paperlib.store.provenance import training_part
from paperlib.store.run_folder import NonFiniteError, Progress, RunFolder, append_log, say


def ema_beta(batch: int, cur_nimg: int, ema_kimg: float, rampup: float = 0.05) -> float:
    """EMA decay per step: half-life h = min(ema_kimg * 1000, rampup * cur_nimg) images, beta = 0.5^(batch / h)."""
    half_life = min(ema_kimg * 1000, rampup * cur_nimg) if rampup else ema_kimg * 1000
    return 0.5 ** (batch / max(half_life, 1e-8))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, net: torch.nn.Module, beta: float) -> None:
    """ema <- beta ema + (1 - beta) net, for trained parameters only: a frozen parameter equals its EMA from the
    start and lerp between equal values returns them exactly, so skipping it (84% of GDD-I's) changes nothing."""
    pairs = [(e, p) for e, p in zip(ema.parameters(), net.parameters()) if p.requires_grad]
    if pairs:
        torch._foreach_lerp_([e for e, _ in pairs], [p.detach() for _, p in pairs], 1 - beta)


def crossed(prev: int, cur: int, every: int) -> bool:
    """Did the image count pass a multiple of ``every`` between ``prev`` and ``cur``?"""
    return cur // every > prev // every


class NonFiniteWatch:
    """Counts, on the device and without a host sync, the iterations in a row whose gradients held NaN or inf."""

    def __init__(self, objective: Objective, device):
        self.objective = objective
        self.streak = self.worst = torch.zeros((), dtype=torch.long, device=device)
        self.last = self.streak + objective.sanitized_tensor()  # a resumed run's earlier steps are not a new streak
        self.warned = False

    def update(self) -> None:
        total = self.objective.sanitized_tensor()
        bad = (total > self.last).long()
        self.last, self.streak = total, (self.streak + 1) * bad
        self.worst = torch.maximum(self.worst, self.streak)

    def check(self, limit: int, kimg: float, last_good: Path | None, warn: bool) -> None:
        """Warn at the first non-finite gradients; stop once ``limit`` iterations in a row had them, naming
        ``last_good``, the last snapshot taken outside a run of non-finite steps."""
        if int(self.worst) >= limit:
            kept = (f"the last snapshot taken before the non-finite steps began is {last_good}" if last_good
                    else "no snapshot was taken before the non-finite steps began")
            raise NonFiniteError(f"stopped at {kimg:g} kimg: {limit} iterations in a row had NaN/inf gradients (is the "
                                 f"learning rate too high?); {kept}")
        if warn and not self.warned and int(self.last) > 0:
            self.warned = True
            say(f"warning: NaN/inf gradients by {kimg:g} kimg, sanitised as the reference (NaN -> 0, inf -> 1e5); "
                f"the run stops after {limit} such iterations in a row")


class Clock:
    """Wall time spent training (seconds, over every resumed part, callbacks excluded) and images per second since
    the last log record."""

    def __init__(self, trained_before: float, nimg: int):
        self.start, self.before, self.excluded = time.perf_counter(), trained_before, 0.0
        self.window = (self.start, nimg)

    def trained(self) -> float:
        return self.before + time.perf_counter() - self.start - self.excluded

    def rate(self, nimg: int) -> float:
        """Images per second since the previous call (or the start), which it then resets."""
        (then, before), now = self.window, time.perf_counter()
        self.window = (now, nimg)
        return (nimg - before) / max(now - then, 1e-9)

    def excluding(self, work: Callable[[], dict]) -> dict:
        """Run ``work`` with its time left out of training time and of the images-per-second window."""
        started = time.perf_counter()
        out = work() or {}
        spent = time.perf_counter() - started
        self.excluded += spent
        self.window = (self.window[0] + spent, self.window[1])
        return out


def start_processes(cfg: TrainConfig) -> tuple[torch.device, DistInfo]:
    """The run's device and its place among torchrun's processes (each rank on its own GPU), CUDA math set."""
    device = resolve_device(cfg.device)
    dinfo = init_distributed(device.type)
    if device.type == "cuda":
        device = torch.device("cuda", dinfo.local_rank)
        torch.cuda.set_device(device)
    configure_backends(device, cfg.tf32)
    return device, dinfo


def train(cfg: TrainConfig, resume: bool = False, callback: Callable | None = None, callback_kimg: float = 0.0,
          progress: bool = True) -> dict:
    """Run (or resume) training as ``cfg`` says; returns a summary dict (parameters, frozen fraction, images seen,
    training seconds, the teacher's identity). ``callback(kimg, ema_net, objective) -> dict`` runs every
    ``callback_kimg`` kimg and at the end, its numbers going into the metrics log (e.g. FID against training images)."""
    cfg.validate()
    device, dinfo = start_processes(cfg)
    is_main, folder = dinfo.rank == 0, RunFolder(cfg.run_dir)
    state = folder.begin(asdict(cfg), cfg.derived(), resume, writer=is_main, map_location=device)  # checks first

    torch.manual_seed(cfg.seed)  # global stream: module init (e.g. teacher from scratch, D heads), dropout
    dataset, objective = build_objective(cfg, dinfo, device)
    net, modules, optimizers = objective.net, objective.modules(), objective.optimizers
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    teacher = weights_identity(cfg.teacher) if cfg.teacher else None  # in each state: a moved teacher resumes
    speed_up(objective, cfg)
    noise = SharedNoise(cfg.seed + 1, dinfo, device)
    at = folder.restore(state, modules, ema, optimizers, noise.generator, writer=is_main)

    stream = BatchStream(dataset, cfg.batch, cfg.seed, dinfo, device, cfg.num_workers).batches(at.batch_idx)
    total = int(cfg.total_kimg * 1000)
    snap_n, log_n = max(int(cfg.snapshot_kimg * 1000), 1), max(int(cfg.log_kimg * 1000), 1)
    cb_n = max(int(callback_kimg * 1000), 1) if callback else None
    info = dict(objective.info, params=sum(p.numel() for p in net.parameters()),
                trainable=sum(p.numel() for p in net.parameters() if p.requires_grad))
    if is_main:
        announce(cfg, info)
        if at.cur_nimg < total:  # where this part trains, kept for the record made when the run is evaluated
            folder.note_part(training_part(at.cur_nimg / 1000), fresh=state is None)
    bar = tqdm(total=total, initial=min(at.cur_nimg, total), unit="img", unit_scale=True,
               disable=not (progress and is_main), desc=cfg.objective)
    clock, watch = Clock(at.trained_seconds, at.cur_nimg), NonFiniteWatch(objective, device)
    last_good = folder.snapshots()[-1] if folder.snapshots() and state is not None else None
    extra = lambda: dict(kimg=at.cur_nimg / 1000, objective=cfg.objective, freeze_level=cfg.freeze_level)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    while at.cur_nimg < total:
        images, labels = next(stream)
        labels = labels if net.label_dim else None
        if cfg.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        stats = objective.step(at.batch_idx, at.cur_nimg, images, labels, noise)  # device tensors: no sync here
        beta = ema_beta(cfg.batch, at.cur_nimg, cfg.ema_kimg, cfg.ema_rampup)
        ema_update(ema, net, beta)
        watch.update()
        prev, at.cur_nimg, at.batch_idx = at.cur_nimg, at.cur_nimg + cfg.batch, at.batch_idx + 1
        bar.update(min(at.cur_nimg, total) - min(prev, total))
        done = at.cur_nimg >= total
        evaluate = bool(cb_n) and (crossed(prev, at.cur_nimg, cb_n) or done)

        if crossed(prev, at.cur_nimg, log_n) or done or evaluate:  # every rank checks the same all-reduced record
            watch.check(cfg.max_nonfinite_steps, at.cur_nimg / 1000, last_good, warn=is_main)
            if is_main:
                record = log_record(at, stats, beta, objective, clock, device)
                if evaluate:
                    record.update(clock.excluding(lambda: callback(at.cur_nimg / 1000, ema, objective)))
                append_log(folder.log, record)
                bar.set_postfix({k: f"{float(v):.3g}" for k, v in stats.items()})
        if is_main and (crossed(prev, at.cur_nimg, snap_n) or done):
            at.trained_seconds = clock.trained()
            snapshot = folder.snapshot_state(at, asdict(cfg), teacher, modules, ema, optimizers, noise.generator,
                                             extra(), cfg.keep_states, last_good)
            if int(watch.streak) == 0:  # one taken inside a streak of sanitised steps is no good one to name
                last_good = snapshot
    bar.close()
    finished_before = state is not None and int(state["cur_nimg"]) >= total and folder.network.exists()
    if is_main and not finished_before:  # a finished run that is resumed has nothing new to write
        folder.write_network(ema, folder.network, extra(), last_good)
    if dinfo.enabled:
        dist.barrier()
    return dict(info, run_dir=str(folder.path), nimg=at.cur_nimg, sanitized_steps=objective.sanitized_steps,
                train_seconds=clock.trained(), teacher_weights=teacher)


def announce(cfg: TrainConfig, info: dict) -> None:
    frozen = info.get("freezing")
    say(f"{cfg.objective} run in {cfg.run_dir}: {info['params']:,} parameters, {info['trainable']:,} trained"
        + (f", freeze level {frozen['level']}: {100 * frozen['frozen_fraction']:.2f}% frozen" if frozen else ""))


def log_record(at: Progress, stats: dict, beta: float, objective: Objective, clock: Clock, device) -> dict:
    """One metrics.jsonl record: the step's losses (read from the device here), the EMA decay, the sanitised steps so
    far, images per second, training time and (CUDA) peak memory."""
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    return dict(nimg=at.cur_nimg, kimg=at.cur_nimg / 1000, **{k: float(v) for k, v in stats.items()}, ema_beta=beta,
                sanitized_steps=objective.sanitized_steps, images_per_sec=clock.rate(at.cur_nimg),
                train_seconds=clock.trained(), peak_mem_mb=peak / 2 ** 20)

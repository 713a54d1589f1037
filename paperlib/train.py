"""One training loop for every objective: EDM denoising (teachers), GDD adversarial, instance distillation.

Progress is counted in images. A run is fully described by a :class:`TrainConfig`, saved as ``config.json`` in
its folder; ``resume=True`` continues from the newest ``training-state-*.pt`` (networks, EMA, optimizers,
discriminator, data position and every random state), so that on CPU a killed and resumed run ends bit-identical
to an uninterrupted one. Under torchrun each rank takes a contiguous slice of every global batch (data and noise
are drawn for the global batch from shared generators), gradients are averaged across ranks before each step,
and rank 0 writes.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import math
import os
import re
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from tqdm import tqdm

from paperlib.checkpoints import generator_from_teacher, load_network, save_network
from paperlib.data import DatasetError, InMemoryDataset, open_dataset
from paperlib.diffusion import edm_loss, edm_sampler, edm_schedule, edm_sigma
from paperlib.discriminator_paths import FastPath, RealFeatureCache, TrainingDiscriminator
from paperlib.discriminators import build_discriminator
from paperlib.freezing import FREEZE_POLICIES, apply_freezing
from paperlib.instance_bank import bank_folder, bank_indices, load_or_build_bank
from paperlib.io import atomic_write_bytes, resolve_device
from paperlib.ledger import teacher_identity
from paperlib.losses import discriminator_loss, generator_loss, instance_loss, r1_loss
from paperlib.precond import build_network
from paperlib.rundir import (
    NonFiniteError,
    RunError,
    RunFolder,
    append_log,
    check_resumed_config,
    load_newest_state,
    lock_run_dir,
    read_log,
    remove_leftovers,
    save_state,
    say,
    state_paths,
    write_log,
)

OBJECTIVES = ("edm", "gdd", "instance")


class ConfigError(ValueError):
    """A training configuration is invalid or does not fit its data/teacher; the message says what was expected."""


@dataclass
class TrainConfig:
    """Everything that defines a training run. Units: images (``*_kimg`` in thousands), learning rates per step."""

    objective: str = "gdd"                     # edm (teacher from scratch) | gdd (GAN fine-tuning) | instance
    dataset: str = "digits-8:train"            # 'digits-8|16:train' or a path in EDM's dataset format
    conditional: bool = False                  # class-conditional: the data's labels go to the networks
    run_dir: str = "runs/run"                  # the run's folder (config, log, states, networks)
    teacher: str | None = None                 # gdd/instance: teacher checkpoint (paperlib file or EDM .pkl)
    precond: str = "EDMPrecond"                # edm: preconditioner of the network trained from scratch
    arch: dict = field(default_factory=dict)   # edm: backbone kwargs (model_type, model_channels, ...)
    freeze_level: int = 0                      # GDD-I: 1 (paper), 0 = GDD
    freeze_policy: str = ""                    # or a named policy of paperlib.freezing.FREEZE_POLICIES (ablation)
    discriminator: str = "small"               # small | projected
    discriminator_kwargs: dict = field(default_factory=dict)  # the discriminator's own options (backbones, weights, ...)
    bn_group: int = 0                          # projected D: BatchNorm over groups of this many images (the
                                               # reference's per-process batch, 64; ImageNet 128); 0 = whole batch
    batch: int = 64                            # global batch (all ranks together)
    lr: float = 1e-4                           # generator / denoiser
    d_lr: float = 1e-4                         # discriminator (before the lazy-R1 correction x16/17)
    betas: list = field(default_factory=lambda: [0.0, 0.99])  # Adam's betas, both optimizers
    lr_rampup_kimg: float = 0.0                # edm: linear learning-rate warm-up
    total_kimg: float = 100.0                  # training images, in thousands
    ema_kimg: float = 500.0                    # EMA half-life cap (the reference's --ema, in kimg)
    ema_rampup: float = 0.05                   # half-life is at most this fraction of the images seen
    gan_loss: str = "ns"                       # ns | hinge
    r1_gamma: float | None = 1e-4              # in paperlib's mean-reduction convention (see paperlib.losses)
    r1_gamma_sum: float = 0.0                  # or the reference's gamma (losses summed over bn_group images), so
                                               # that the weight follows bn_group: r1_gamma = r1_gamma_sum / bn_group
    r1_interval: int = 16                      # lazy R1: every this many discriminator steps
    instance_steps: int = 18                   # instance: teacher Heun steps per target (NFE 2N-1)
    instance_loss: str = "l2"                  # l2 | pseudo_huber
    instance_bank: int = 0                     # instance: >0 = a fixed bank of this many (noise, teacher image)
                                               # pairs, solved once per teacher and cached in bank_dir;
                                               # 0 = one teacher solve per training step
    bank_dir: str = ""                         # instance: the banks' folder ('' = run_dir's parent); a bank is
                                               # named by its teacher, NFE and size, so runs may share one folder
    P_mean: float = -1.2                       # edm: training noise levels ln(sigma) ~ N(P_mean, P_std^2)
    P_std: float = 1.2                         # edm: see P_mean
    sigma_data: float = 0.5                    # edm: the data's standard deviation in the preconditioning
    seed: int = 0                              # every random stream of the run (data order, noise, init)
    snapshot_kimg: float = 10.0                # a training state and an EMA network snapshot every this many kimg
    keep_states: int = 2                       # training states kept on disk (network snapshots are all kept)
    log_kimg: float = 1.0                      # a metrics.jsonl record every this many kimg
    device: str = "auto"                       # auto | cpu | cuda
    bf16: bool = False                         # generator in bfloat16 (GroupNorm/softmax stay fp32); CPU: opt-in
    channels_last: bool = False                # channels-last memory layout (a speed option; the same maths)
    tf32: bool = False                         # CUDA: TF32 for fp32 convolutions and matmuls (off, as the reference)
    compile: bool = False                      # torch.compile the trained network's backbone (slow to build)
    max_nonfinite_steps: int = 20              # stop when this many iterations in a row had NaN/inf gradients
    fast_d: bool = False                       # projected D, opt-in: features in bf16 autocast, channels-last;
                                               # on CUDA TF32 and features+heads compiled; R1 passes stay exact
    num_workers: int = 2                       # data-loading workers for folder datasets

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown config key(s) {unknown}; known keys: {sorted(known)}")
        return cls(**values)

    def validate(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective {self.objective!r}; expected one of {OBJECTIVES}")
        if self.objective != "edm" and not self.teacher:
            raise ConfigError(f"objective {self.objective!r} needs a teacher checkpoint (teacher=PATH)")
        if self.objective == "edm" and not self.arch:
            raise ConfigError("objective 'edm' trains a network from scratch and needs its architecture (arch={...})")
        self._check_values()
        if (self.r1_gamma is None) == (not self.r1_gamma_sum):
            raise ConfigError(f"give the R1 weight once: r1_gamma ({self.r1_gamma}, paperlib's convention) or "
                              f"r1_gamma_sum ({self.r1_gamma_sum}, the reference's, divided by bn_group)")
        if self.r1_gamma_sum and self.bn_group < 1:
            raise ConfigError("r1_gamma_sum is converted through bn_group, the reference's per-process batch; "
                              "set bn_group (64 for the paper's runs, 128 for ImageNet)")
        if self.fast_d and self.discriminator != "projected":
            raise ConfigError(f"fast_d speeds up the projected discriminator's feature networks; the "
                              f"{self.discriminator!r} discriminator has none")
        if self.bn_group and self.discriminator != "projected":
            raise ConfigError(f"bn_group applies to the projected discriminator's BatchNorm; the {self.discriminator!r} "
                              f"discriminator has none")

    def _check_values(self) -> None:
        """Every value's type and range, so that a wrong value stops the run before anything is written."""
        def number(name: str, low: float, strict: bool = False, integer: bool = False, none: bool = False) -> None:
            value = getattr(self, name)
            if none and value is None:
                return
            kind = int if integer else (int, float)
            ok = isinstance(value, kind) and not isinstance(value, bool) and (value > low if strict else value >= low)
            ok = ok and not (isinstance(value, float) and not math.isfinite(value))  # JSON's Infinity, 1e400
            if not ok:
                what = "an integer" if integer else "a finite number"
                raise ConfigError(f"{name}: expected {what} {'>' if strict else '>='} {low:g}, got {value!r}")

        for name in ("batch", "r1_interval", "keep_states", "instance_steps", "max_nonfinite_steps"):
            number(name, 1, integer=True)
        for name in ("seed", "freeze_level", "bn_group", "num_workers", "instance_bank"):
            number(name, 0, integer=True)
        for name in ("lr", "d_lr", "total_kimg", "snapshot_kimg", "log_kimg", "ema_kimg", "sigma_data"):
            number(name, 0, strict=True)
        for name in ("lr_rampup_kimg", "ema_rampup", "r1_gamma_sum", "P_std"):
            number(name, 0)
        number("r1_gamma", 0, none=True)
        if not isinstance(self.P_mean, (int, float)) or isinstance(self.P_mean, bool) or not math.isfinite(self.P_mean):
            raise ConfigError(f"P_mean: expected a number, got {self.P_mean!r}")
        betas = self.betas
        if not (isinstance(betas, (list, tuple)) and len(betas) == 2
                and all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)):
            raise ConfigError(f"betas: expected two numbers in [0, 1), e.g. [0.0, 0.99]; got {betas!r}")
        for name in ("conditional", "bf16", "channels_last", "tf32", "compile", "fast_d"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}: expected true or false, got {getattr(self, name)!r}")
        choices = dict(discriminator=("small", "projected"), gan_loss=("ns", "hinge"),
                       instance_loss=("l2", "pseudo_huber"), freeze_policy=("", *FREEZE_POLICIES))
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name}: expected one of {allowed}, got {getattr(self, name)!r}")
        if not isinstance(self.device, str) or self.device.split(":")[0] not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device: expected auto, cpu or cuda[:N], got {self.device!r}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"device {self.device!r}: no CUDA GPU is visible to this process; use device cpu or auto")
        for name in ("arch", "discriminator_kwargs"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(f"{name}: expected a JSON object, got {getattr(self, name)!r}")

    @property
    def r1_weight(self) -> float:
        """R1's gamma in paperlib's mean-over-samples convention (the loss's weight)."""
        return self.r1_gamma_sum / self.bn_group if self.r1_gamma_sum else self.r1_gamma

    @property
    def adam_eps(self) -> float:
        """Adam's epsilon. The reference's gradients are sums over each process's bn_group images, paperlib's are
        means, so its eps (1e-8) is divided by bn_group: Adam then takes exactly the reference's steps."""
        return 1e-8 / self.bn_group if self.bn_group else 1e-8

    def derived(self) -> dict:
        """The values the run uses that follow from other keys (written beside the config in config.json, so that
        one ``bn_group`` setting shows all it sets): R1's weight, Adam's epsilon, the discriminator's BatchNorm
        group (0: the whole batch on each process)."""
        return dict(r1_weight=self.r1_weight, adam_eps=self.adam_eps, batchnorm_group=self.bn_group)

    @classmethod
    def key_help(cls) -> list[tuple[str, object, str]]:
        """(key, default, meaning) of every config key, the meaning read from the field's comment in this class's
        source (continued on the comment lines below it), so the help never drifts from the code."""
        meaning: dict[str, str] = {}
        last = None
        for line in inspect.getsource(cls).splitlines():
            field_match = re.match(r"\s{4}(\w+): [^#]*?(?:#\s*(.*))?$", line)
            if field_match and field_match.group(1) in cls.__dataclass_fields__:
                last = field_match.group(1)
                meaning[last] = field_match.group(2) or ""
            elif last and re.match(r"\s{8,}#", line):
                meaning[last] += " " + line.strip()[1:].strip()
            elif line.strip():
                last = None
        defaults = {f.name: f.default if f.default_factory is MISSING else f.default_factory() for f in fields(cls)}
        return [(name, defaults[name], meaning.get(name, "").strip()) for name in defaults]


# ----------------------------------------------------------------------------------------------------------
# Small helpers of the loop.

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


def configure_backends(device: torch.device, tf32: bool = False) -> None:
    """CUDA math as the reference sets it: cuDNN autotuning on and TF32 off unless ``tf32`` (PyTorch's own default
    allows TF32 in cuDNN convolutions, which would change the discriminator's numbers). Nothing to do on CPU."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32


def speed_up(objective: "Objective", cfg: TrainConfig) -> None:
    """Layout and compilation choices that keep the step's maths: channels-last for every module, and
    torch.compile of the trained network's backbone (not of D, whose R1 term needs double backward, which compiled
    graphs do not support). Call after the EMA copy is taken: the EMA stays an ordinary module."""
    if cfg.channels_last:
        for module in objective.modules().values():
            module.to(memory_format=torch.channels_last)
    if cfg.compile:
        objective.net.model.compile()


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_distributed(device_kind: str) -> DistInfo:
    """Join the torchrun process group if launched by torchrun (NCCL on GPU, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


class GradientStep:
    """One optimizer step of a set of parameters from a loss: backward, the gradients averaged across ranks (one
    flat all-reduce) and NaN/inf sanitised as the reference (NaN -> 0, +-inf -> +-1e5), then Adam.

    Nothing in ``step`` waits for the device: non-finite steps are counted in a device tensor (read when logging)
    and sanitising always runs, since it leaves finite values unchanged. Adam is fused on CUDA."""

    def __init__(self, params, lr: float, betas, dist_info: DistInfo, eps: float = 1e-8):
        self.params = [p for p in params if p.requires_grad]
        fused = bool(self.params) and self.params[0].is_cuda
        self.adam = torch.optim.Adam(self.params, lr=lr, betas=tuple(betas), eps=eps, fused=fused or None)
        self.dist = dist_info
        self._sanitized = torch.zeros((), dtype=torch.long, device=self.params[0].device if self.params else None)

    @property
    def sanitized_steps(self) -> int:
        """Steps whose gradients held NaN or inf (reading it waits for the device)."""
        return int(self._sanitized)

    def step(self, loss: torch.Tensor, lr: float | None = None) -> None:
        for p in self.params:
            p.grad = None
        loss.backward()
        if not self.params:
            return
        # One flat buffer: a single all-reduce across ranks and a single finiteness check.
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in self.params])
        if self.dist.enabled:
            dist.all_reduce(flat)
            flat /= self.dist.world
        self._sanitized += torch.logical_not(torch.isfinite(flat).all())
        flat.nan_to_num_(nan=0.0, posinf=1e5, neginf=-1e5)  # as the reference: NaN -> 0, +-inf -> +-1e5
        for p, g in zip(self.params, flat.split([p.numel() for p in self.params])):
            # A channels-last weight needs a gradient of its own strides (the fused CUDA Adam checks them).
            p.grad = g.view_as(p) if p.is_contiguous() else torch.empty_like(p).copy_(g.view(p.shape))
        if lr is not None:
            for group in self.adam.param_groups:
                group["lr"] = lr
        self.adam.step()

    def state_dict(self) -> dict:
        return dict(adam=self.adam.state_dict(), sanitized_steps=self.sanitized_steps)

    def load_state_dict(self, state: dict) -> None:
        self.adam.load_state_dict(state["adam"])
        self._sanitized.fill_(int(state["sanitized_steps"]))


# ----------------------------------------------------------------------------------------------------------
# Objectives: each owns the trained network ``net`` (whose EMA the loop keeps) and its optimizers.

class Objective:
    def __init__(self, cfg: TrainConfig, dist_info: DistInfo):
        self.cfg, self.dist = cfg, dist_info
        self.optimizers: dict[str, GradientStep] = {}
        self.extra_modules: dict[str, torch.nn.Module] = {}
        self.info: dict = {}

    def step(self, batch_idx: int, cur_nimg: int, images, labels, noise: Callable) -> dict:
        """One training step; returns its losses as 0-d device tensors (the loop reads them only when logging)."""
        raise NotImplementedError

    def modules(self) -> dict[str, torch.nn.Module]:
        return dict(net=self.net, **self.extra_modules)

    @property
    def sanitized_steps(self) -> int:
        return sum(o.sanitized_steps for o in self.optimizers.values())

    def sanitized_tensor(self) -> torch.Tensor:
        """The optimizer steps with NaN/inf gradients so far, as a device tensor (no host sync)."""
        return sum(o._sanitized for o in self.optimizers.values())


class EDMObjective(Objective):
    """Denoising score matching with EDM's loss: trains a teacher from scratch."""

    def __init__(self, cfg, dist_info, dataset, device):
        super().__init__(cfg, dist_info)
        self.net = build_network(cfg.precond, img_resolution=dataset.resolution, img_channels=dataset.num_channels,
                                 label_dim=dataset.label_dim if cfg.conditional else 0, sigma_data=cfg.sigma_data,
                                 **cfg.arch).to(device).train()
        self.optimizers["net"] = GradientStep(self.net.parameters(), cfg.lr, cfg.betas, dist_info)

    def step(self, batch_idx, cur_nimg, images, labels, noise):
        sigma = edm_sigma(noise([self.cfg.batch, 1, 1, 1]), self.cfg.P_mean, self.cfg.P_std)
        n = noise([self.cfg.batch, *images.shape[1:]])
        loss = edm_loss(self.net, images, labels, sigma, n, self.cfg.sigma_data).mean()
        rampup = min(cur_nimg / max(self.cfg.lr_rampup_kimg * 1000, 1e-8), 1) if self.cfg.lr_rampup_kimg else 1
        self.optimizers["net"].step(loss, lr=self.cfg.lr * rampup)
        return dict(loss=loss.detach())


def build_student(cfg: TrainConfig, device) -> tuple[torch.nn.Module, dict]:
    """The one-step generator initialised from the teacher, frozen at ``cfg.freeze_policy`` or else
    ``cfg.freeze_level``: (net, freezing info)."""
    net = generator_from_teacher(cfg.teacher).to(device).train().requires_grad_(True)
    net.use_fp16 = net.bf16_on_cpu = cfg.bf16  # bf16 on GPU, and on CPU only when asked for explicitly
    return net, apply_freezing(net, cfg.freeze_policy or cfg.freeze_level)


def build_training_discriminator(cfg: TrainConfig, net: torch.nn.Module, kwargs: dict, dataset, dist_info: DistInfo,
                                  device) -> TrainingDiscriminator:
    """The discriminator of ``cfg`` for ``net`` (the model, on ``device``, in training mode) as training runs it:
    with the fast path when ``fast_d`` (compiled on CUDA), and with the training images' frozen features cached when
    the projected discriminator meets an in-memory dataset (bit for bit the same maps; not with channels-last)."""
    try:
        model = build_discriminator(cfg.discriminator, net.img_channels, net.label_dim, **kwargs)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"discriminator_kwargs {cfg.discriminator_kwargs}: cannot build the {cfg.discriminator!r} "
                          f"discriminator: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    model = model.to(device).train()
    fast = FastPath(model, compile=device.type == "cuda") if cfg.fast_d else None
    cache = None
    if cfg.discriminator == "projected" and isinstance(dataset, InMemoryDataset) and not cfg.channels_last:
        reals = torch.stack([dataset[i][0] for i in range(len(dataset))]).to(device)
        cache = RealFeatureCache(fast.feature_maps if fast else model.feature_maps, len(model.features), reals,
                                 cfg.batch // dist_info.world)
    return TrainingDiscriminator(model, fast, cache)


class GDDObjective(Objective):
    """GAN fine-tuning of a one-step generator initialised from the teacher (GDD; GDD-I with freeze_level > 0)."""

    def __init__(self, cfg, dist_info, dataset, device):
        super().__init__(cfg, dist_info)
        self.net, self.info["freezing"] = build_student(cfg, device)
        kwargs = dict(cfg.discriminator_kwargs)
        if cfg.discriminator == "projected":
            kwargs.setdefault("projection_seed", cfg.seed)  # the same frozen projections on every rank
            local = cfg.batch // dist_info.world
            if cfg.bn_group and local % cfg.bn_group:
                raise ConfigError(f"each of the {dist_info.world} processes gets {local} images, not a multiple of "
                                  f"bn_group={cfg.bn_group}: use fewer processes or a larger batch (the reference's "
                                  f"runs assume {cfg.bn_group} per process)")
            kwargs["bn_group"] = cfg.bn_group
        self.D = build_training_discriminator(cfg, self.net, kwargs, dataset, dist_info, device)
        self.extra_modules["D"] = self.D.model
        self.D_params = [p for p in self.D.trainable_parameters() if p.requires_grad]
        # StyleGAN2's lazy-regularisation correction of the D optimizer (R1 every r1_interval steps).
        ratio = cfg.r1_interval / (cfg.r1_interval + 1)
        self.optimizers["G"] = GradientStep(self.net.parameters(), cfg.lr, cfg.betas, dist_info, eps=cfg.adam_eps)
        self.optimizers["D"] = GradientStep(self.D_params, cfg.d_lr * ratio, [cfg.betas[0], cfg.betas[1] ** ratio], dist_info,
                                         eps=cfg.adam_eps)

    def _generate(self, noise, labels):
        z = noise([self.cfg.batch, self.net.img_channels, self.net.img_resolution, self.net.img_resolution])
        return self.net.generate(z, labels)

    def step(self, batch_idx, cur_nimg, images, labels, noise):
        cfg = self.cfg
        # Generator step: D's trainable weights need no gradient here.
        for p in self.D_params:
            p.requires_grad_(False)
        fake = self._generate(noise, labels)
        loss_g = generator_loss(self.D(fake, labels), cfg.gan_loss)
        self.optimizers["G"].step(loss_g)
        for p in self.D_params:
            p.requires_grad_(True)
        # Discriminator step on fresh fakes; real and fake pass through D separately (as the reference).
        with torch.no_grad():
            fake = self._generate(noise, labels)
        logits_fake = self.D(fake, labels)
        logits_real = self.D(images, labels, reals=True)  # their frozen features may be cached
        loss_d = discriminator_loss(logits_real, logits_fake, cfg.gan_loss)
        self.optimizers["D"].step(loss_d)
        out = dict(loss_G=loss_g.detach(), loss_D=loss_d.detach(),
                   logits_real=torch.cat([l.detach().flatten() for l in logits_real]).mean(),
                   logits_fake=torch.cat([l.detach().flatten() for l in logits_fake]).mean())
        # Lazy R1 on real images, never at iteration 0.
        if cfg.r1_weight > 0 and batch_idx != 0 and batch_idx % cfg.r1_interval == 0:
            with self.D.exact() if cfg.fast_d else contextlib.nullcontext():  # forward and double backward
                loss_r1 = r1_loss(self.D, images, labels, cfg.r1_weight, cfg.r1_interval)
                self.optimizers["D"].step(loss_r1)
            out["loss_R1"] = loss_r1.detach()
        return out


    @torch.no_grad()
    def discriminator_view(self, reals: torch.Tensor, labels: torch.Tensor | None, seed: int) -> dict:
        """What D makes of images it never trained on, without touching training: its mean logit on the held-out
        ``reals`` [N, C, R, R] (in [-1, 1], ``labels`` one-hot [N, classes] or None) and on as many fresh fakes of
        the current generator (noise from its own generator seeded by ``seed``), and its accuracy on each (the share
        of logits above 0 on reals, below 0 on fakes; 0.5 is chance). The reals are cut to whole BatchNorm groups.
        Every buffer of D (BatchNorm statistics, spectral-norm vectors) is restored afterwards and no training RNG is
        drawn, so the run is unchanged."""
        buffers = {name: b.clone() for name, b in self.D.model.named_buffers()}
        usable = len(reals) // (self.cfg.bn_group or 1) * (self.cfg.bn_group or 1)  # whole BatchNorm groups only
        reals, labels = reals[:usable], None if labels is None else labels[:usable]
        z = torch.randn([len(reals), self.net.img_channels, self.net.img_resolution, self.net.img_resolution],
                        generator=torch.Generator().manual_seed(seed)).to(reals.device)
        fake = self.net.generate(z, labels)
        view = {}
        for name, images in (("real", reals), ("fake", fake)):
            logits = torch.cat([l.flatten() for l in self.D(images, labels)])
            correct = logits > 0 if name == "real" else logits < 0
            view[f"d_logit_{name}"], view[f"d_accuracy_{name}"] = float(logits.mean()), float(correct.float().mean())
        for name, b in self.D.model.named_buffers():
            b.copy_(buffers[name])
        return view


class InstanceObjective(Objective):
    """Instance-level distillation baseline: the one-step student regresses onto the teacher's Heun solution, solved
    at every step for fresh noise, or (``instance_bank`` > 0) drawn from a fixed bank of solved pairs, as instance
    distillation is usually run (see :func:`paperlib.instance_bank.load_or_build_bank`)."""

    def __init__(self, cfg, dist_info, dataset, device):
        super().__init__(cfg, dist_info)
        self.net, self.info["freezing"] = build_student(cfg, device)
        self.teacher = load_network(cfg.teacher).to(device).eval()
        self.optimizers["G"] = GradientStep(self.net.parameters(), cfg.lr, cfg.betas, dist_info)
        self.bank = None
        if cfg.instance_bank:
            self.bank = load_or_build_bank(self.teacher, cfg.teacher, cfg.instance_bank, cfg.instance_steps,
                                           bank_folder(cfg.bank_dir, cfg.run_dir), device)
            self.info["instance_bank"] = dict(size=cfg.instance_bank, file=str(self.bank["path"]))

    def step(self, batch_idx, cur_nimg, images, labels, noise):
        if self.bank is not None:
            idx = bank_indices(batch_idx, self.cfg.batch, len(self.bank["noise"]), self.cfg.seed, self.dist)
            z, target = self.bank["noise"][idx], self.bank["target"][idx]
            labels = self.bank["labels"][idx] if self.net.label_dim else labels
        else:
            z = noise([self.cfg.batch, self.net.img_channels, self.net.img_resolution, self.net.img_resolution])
            with torch.no_grad():
                t_steps = edm_schedule(self.teacher, self.cfg.instance_steps, device=z.device)
                target = edm_sampler(self.teacher, z, t_steps, labels).float()
        loss = instance_loss(self.net.generate(z, labels), target, self.cfg.instance_loss)
        self.optimizers["G"].step(loss)
        return dict(loss=loss.detach())


OBJECTIVE_CLASSES = {"edm": EDMObjective, "gdd": GDDObjective, "instance": InstanceObjective}


# ----------------------------------------------------------------------------------------------------------
# Data: a deterministic, resumable order of global batches.

class BatchStream:
    """Global batch number k covers images k*B ... (k+1)*B - 1 of an endless sequence of per-epoch permutations
    (seeded by seed and epoch); each rank takes its contiguous slice. Resuming at batch k reproduces the order."""

    def __init__(self, dataset, batch: int, seed: int, dist_info: DistInfo, device, num_workers: int = 0):
        if batch % dist_info.world:
            raise ConfigError(f"global batch {batch} is not divisible by the {dist_info.world} processes")
        self.dataset, self.batch, self.seed, self.dist, self.device = dataset, batch, seed, dist_info, device
        self.local = batch // dist_info.world
        self.num_workers = num_workers
        self._perm_epoch, self._perm = -1, None
        if isinstance(dataset, InMemoryDataset):  # small: kept on the device, so a batch is an index, not a copy
            self.images = torch.stack([dataset[i][0] for i in range(len(dataset))]).to(device)
            self.labels = torch.stack([dataset.onehot(i) for i in range(len(dataset))]).to(device)

    def _indices(self, k: int) -> list[int]:
        n = len(self.dataset)
        out = []
        for q in range(k * self.batch + self.dist.rank * self.local, k * self.batch + (self.dist.rank + 1) * self.local):
            epoch = q // n
            if epoch != self._perm_epoch:
                self._perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))
                self._perm_epoch = epoch
            out.append(int(self._perm[q % n]))
        return out

    def batches(self, start: int):
        """Yield (images [b, C, R, R], labels [b, label_dim]) on the device from global batch ``start`` on."""
        if isinstance(self.dataset, InMemoryDataset):
            k = start
            while True:
                idx = torch.tensor(self._indices(k)).to(self.device, non_blocking=True)
                yield self.images[idx], self.labels[idx]
                k += 1
        else:
            sampler = (self._indices(k) for k in _count(start))
            loader = torch.utils.data.DataLoader(self.dataset, batch_sampler=sampler, num_workers=self.num_workers,
                                                 pin_memory=self.device.type == "cuda",
                                                 prefetch_factor=4 if self.num_workers else None,
                                                 persistent_workers=False)
            try:
                for images, labels in loader:
                    yield images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
            except DatasetError as exc:  # a worker's error arrives with its traceback: keep the message alone
                raise DatasetError(str(exc).strip().splitlines()[-1].split("DatasetError: ", 1)[-1]) from None


def _count(start: int):
    while True:
        yield start
        start += 1


class SharedNoise:
    """Draws noise for the global batch from one generator (identical on every rank) and returns this rank's slice,
    so that N processes see exactly the noise of one process with the same global batch."""

    def __init__(self, seed: int, dist_info: DistInfo, device):
        self.generator = torch.Generator(device).manual_seed(seed)
        self.dist, self.device = dist_info, device

    def __call__(self, shape) -> torch.Tensor:
        full = torch.randn(list(shape), generator=self.generator, device=self.device)
        local = shape[0] // self.dist.world
        return full[self.dist.rank * local:(self.dist.rank + 1) * local]


# ----------------------------------------------------------------------------------------------------------
# The loop.

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


def _save_network_checked(ema: torch.nn.Module, path: Path, extra: dict, kept: Path | None) -> None:
    """Save the EMA network, never with non-finite weights, and turn a failed write into a one-line error."""
    if not all(bool(torch.isfinite(p).all()) for p in ema.parameters()):
        raise RunError(f"{path}: not written, the EMA network has NaN/inf weights; "
                       + (f"the last good snapshot is {kept}" if kept else "no snapshot was written"))
    try:
        save_network(ema, path, extra=extra)
    except OSError as exc:
        raise RunError(f"{path}: could not be written ({exc.strerror}); "
                       + (f"{kept} is kept" if kept else "no earlier snapshot exists")) from None


def train(cfg: TrainConfig, resume: bool = False, callback: Callable | None = None, callback_kimg: float = 0.0,
          progress: bool = True) -> dict:
    """Run (or resume) training; returns a summary dict. ``callback(kimg, ema_net, objective) -> dict`` runs every
    ``callback_kimg`` and its numbers go into the metrics log (e.g. FID against training images)."""
    # --- Check everything, take the run folder, and only then write to it.
    cfg.validate()
    device = resolve_device(cfg.device)
    dinfo = init_distributed(device.type)
    if device.type == "cuda":
        device = torch.device("cuda", dinfo.local_rank)
        torch.cuda.set_device(device)
    configure_backends(device, cfg.tf32)
    run_dir, is_main = Path(cfg.run_dir), dinfo.rank == 0
    folder = RunFolder(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run_dir {run_dir} is a file; expected a folder (or a path that does not exist yet)")
    lock = lock_run_dir(run_dir) if is_main else None  # noqa: F841 (held until the process ends)
    if state_paths(run_dir) and not resume:
        raise ConfigError(f"{run_dir} already holds a run ({state_paths(run_dir)[-1].name}); pass --resume to "
                          f"continue it or choose another run_dir")
    # The state to resume from is read before anything is written: it says what the run is, with config.json or
    # without it (its digest covers the config).
    state, state_path = load_newest_state(run_dir, device) if resume else (None, None)
    if resume and state is None and state_paths(run_dir):
        raise RunError(f"no training state in {run_dir} loads (see above); every file is kept: move them away to start "
                       f"the run over")
    if resume:
        check_resumed_config(run_dir, asdict(cfg), state)
    if is_main:
        remove_leftovers(run_dir)
        atomic_write_bytes(folder.config, json.dumps(dict(asdict(cfg), derived=cfg.derived()), indent=2).encode())

    # --- Data, networks, objective.
    torch.manual_seed(cfg.seed)  # global stream: module init (e.g. teacher from scratch, D heads), dropout
    dataset = open_dataset(cfg.dataset, labels=cfg.conditional)
    if cfg.conditional and dataset.labels is None:
        raise ConfigError(f"{cfg.dataset}: a conditional run needs labels, and this dataset has none")
    objective = OBJECTIVE_CLASSES[cfg.objective](cfg, dinfo, dataset, device)
    net = objective.net
    if cfg.conditional and not net.label_dim:
        raise ConfigError(f"conditional is true but the teacher {cfg.teacher} is unconditional (label_dim 0)")
    try:
        dataset.check_compatible(net)
    except DatasetError as exc:
        raise ConfigError(f"teacher {cfg.teacher} does not fit the dataset: {exc}") from None
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    teacher_weights = teacher_identity(cfg.teacher) if cfg.teacher else None  # in each state: a moved teacher resumes
    speed_up(objective, cfg)
    noise = SharedNoise(cfg.seed + 1, dinfo, device)

    # --- Resume from the newest state that loads, or start from scratch with a fresh log.
    cur_nimg = batch_idx = 0
    trained_seconds = 0.0  # wall time spent training, over every resumed part, callbacks excluded
    metrics_path = folder.log
    if state is not None:
        for name, module in objective.modules().items():
            module.load_state_dict(state["modules"][name])
        ema.load_state_dict(state["ema"])
        for name, opt in objective.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        noise.generator.set_state(state["noise_rng"].to(noise.generator.get_state().device))
        torch.set_rng_state(state["torch_rng"])
        cur_nimg, batch_idx = int(state["cur_nimg"]), int(state["batch_idx"])
        trained_seconds = float(state.get("trained_seconds", 0.0))
        if is_main:  # drop log records written after the state we resume from
            kept = [r for r in read_log(metrics_path) if isinstance(r.get("nimg"), (int, float)) and r["nimg"] <= cur_nimg]
            write_log(metrics_path, kept)
            say(f"resuming {run_dir} from {state_path.name} ({cur_nimg / 1000:g} kimg)")
    elif is_main:
        if resume:
            say(f"{run_dir} has no training state to resume from: starting from scratch")
        if metrics_path.exists():  # a run that stopped before its first state: its records start over
            metrics_path.unlink()

    # --- The loop.
    stream = BatchStream(dataset, cfg.batch, cfg.seed, dinfo, device, cfg.num_workers).batches(batch_idx)
    total = int(cfg.total_kimg * 1000)
    snap_n, log_n = max(int(cfg.snapshot_kimg * 1000), 1), max(int(cfg.log_kimg * 1000), 1)
    cb_n = max(int(callback_kimg * 1000), 1) if callback else None
    info = dict(objective.info, params=sum(p.numel() for p in net.parameters()),
                trainable=sum(p.numel() for p in net.parameters() if p.requires_grad))
    if is_main:
        frozen = info.get("freezing")
        say(f"{cfg.objective} run in {run_dir}: {info['params']:,} parameters, {info['trainable']:,} trained"
            + (f", freeze level {frozen['level']}: {100 * frozen['frozen_fraction']:.2f}% frozen" if frozen else ""))
    bar = tqdm(total=total, initial=min(cur_nimg, total), unit="img", unit_scale=True, disable=not (progress and is_main),
               desc=f"{cfg.objective}")
    window = dict(t=time.perf_counter(), n=cur_nimg)
    clock = dict(start=time.perf_counter(), callbacks=0.0)
    watch = NonFiniteWatch(objective, device)
    snapshots = folder.snapshots()
    last_good = snapshots[-1] if snapshots and state is not None else None
    extra = lambda: dict(kimg=cur_nimg / 1000, objective=cfg.objective, freeze_level=cfg.freeze_level)  # noqa: E731

    def seconds_trained() -> float:
        return trained_seconds + time.perf_counter() - clock["start"] - clock["callbacks"]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    while cur_nimg < total:
        images, labels = next(stream)
        labels = labels if net.label_dim else None
        if cfg.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        stats = objective.step(batch_idx, cur_nimg, images, labels, noise)  # device tensors: no sync here
        beta = ema_beta(cfg.batch, cur_nimg, cfg.ema_kimg, cfg.ema_rampup)
        ema_update(ema, net, beta)
        watch.update()
        prev, cur_nimg, batch_idx = cur_nimg, cur_nimg + cfg.batch, batch_idx + 1
        bar.update(min(cur_nimg, total) - min(prev, total))
        done = cur_nimg >= total
        evaluate = bool(cb_n) and (crossed(prev, cur_nimg, cb_n) or done)

        # Log (every rank checks the same all-reduced gradients' record, so all stop together).
        if crossed(prev, cur_nimg, log_n) or done or evaluate:
            watch.check(cfg.max_nonfinite_steps, cur_nimg / 1000, last_good, warn=is_main)
        if is_main and (crossed(prev, cur_nimg, log_n) or done or evaluate):
            stats = {k: float(v) for k, v in stats.items()}
            now = time.perf_counter()
            record = dict(nimg=cur_nimg, kimg=cur_nimg / 1000, **stats, ema_beta=beta,
                          sanitized_steps=objective.sanitized_steps,
                          images_per_sec=(cur_nimg - window["n"]) / max(now - window["t"], 1e-9),
                          train_seconds=seconds_trained(),
                          peak_mem_mb=(torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0) / 2 ** 20)
            window.update(t=now, n=cur_nimg)
            if evaluate:
                started = time.perf_counter()
                record.update(callback(cur_nimg / 1000, ema, objective) or {})
                clock["callbacks"] += time.perf_counter() - started
                window["t"] += time.perf_counter() - started
            append_log(metrics_path, record)
            bar.set_postfix({k: f"{v:.3g}" for k, v in stats.items()})

        # Snapshot: the training state (to resume from) and the EMA network.
        if is_main and (crossed(prev, cur_nimg, snap_n) or done):
            payload = dict(config=json.dumps(asdict(cfg)), teacher=teacher_weights, cur_nimg=cur_nimg,
                           batch_idx=batch_idx, modules={k: m.state_dict() for k, m in objective.modules().items()},
                           ema=ema.state_dict(),
                           optimizers={k: o.state_dict() for k, o in objective.optimizers.items()},
                           noise_rng=noise.generator.get_state(), torch_rng=torch.get_rng_state(),
                           trained_seconds=seconds_trained())
            snapshot_path = folder.snapshot(cur_nimg)
            _save_network_checked(ema, snapshot_path, extra(), last_good)
            save_state(folder.state(cur_nimg), payload)
            if int(watch.streak) == 0:  # one taken inside a streak of sanitised steps is no good one to name
                last_good = snapshot_path
            for old in state_paths(run_dir)[:-cfg.keep_states]:
                old.unlink()
    bar.close()
    finished_before = state is not None and int(state["cur_nimg"]) >= total and folder.network.exists()
    if is_main and not finished_before:  # a finished run that is resumed has nothing new to write
        _save_network_checked(ema, folder.network, extra(), last_good)
    if dinfo.enabled:
        dist.barrier()
    return dict(info, run_dir=str(run_dir), nimg=cur_nimg, sanitized_steps=objective.sanitized_steps,
                train_seconds=seconds_trained(), teacher_weights=teacher_weights)

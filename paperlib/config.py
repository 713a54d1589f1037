"""The configuration of a training run: every key, its default, its meaning and its check.

A run is fully described by one :class:`TrainConfig`, saved as ``config.json`` in its folder; ``python -m paperlib
train --help`` lists the keys with the meanings written beside them here.
"""

from __future__ import annotations

import inspect
import math
import re
from dataclasses import MISSING, dataclass, field, fields

import torch

from paperlib.freezing import FREEZE_POLICIES
from paperlib.store.network_config import ConfigError as NetworkConfigError
from paperlib.store.network_config import check_network_config

OBJECTIVES = ("edm", "gdd", "instance")
# Whole-number keys and their ranges: counts stay far below what a machine holds, seeds within EDM's 32 bits.
COUNT_RANGES = dict(batch=(1, 1 << 16), r1_interval=(1, 10 ** 6), keep_states=(1, 10 ** 6), instance_steps=(1, 1000),
                    max_nonfinite_steps=(1, 10 ** 6), seed=(0, 2 ** 32 - 1), freeze_level=(0, 1),
                    bn_group=(0, 1 << 16), num_workers=(0, 256), instance_bank=(0, 10 ** 7))
MAX_NUMBER = 10 ** 12       # any other number of a config (rates, kimg, ...)
PATH_KEYS = ("dataset", "run_dir", "teacher", "bank_dir")  # kept as the strings given, never read as JSON
MAX_PATH = 4096


def shown(value) -> str:
    """A value as an error message shows it: short, whatever its size."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"a whole number of {value.bit_length():,} bits"
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({type(value).__name__}, {len(text):,} characters)"


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
        def number(name: str, low: float, strict: bool = False, integer: bool = False, none: bool = False,
                   high: int = MAX_NUMBER) -> None:
            value = getattr(self, name)
            if none and value is None:
                return
            kind = int if integer else (int, float)
            ok = isinstance(value, kind) and not isinstance(value, bool) and (value > low if strict else value >= low)
            ok = ok and not (isinstance(value, float) and not math.isfinite(value)) and value <= high  # 1e400: inf
            if not ok:
                what = "an integer" if integer else "a finite number"
                raise ConfigError(f"{name}: expected {what} {'>' if strict else '>='} {low:g} and <= "
                                  f"{high:,}, got {shown(value)}")

        for name in ("batch", "r1_interval", "keep_states", "instance_steps", "max_nonfinite_steps", "seed",
                     "freeze_level", "bn_group", "num_workers", "instance_bank"):
            low, high = COUNT_RANGES[name]
            number(name, low, integer=True, high=high)
        for name in ("lr", "d_lr", "total_kimg", "snapshot_kimg", "log_kimg", "ema_kimg", "sigma_data"):
            number(name, 0, strict=True)
        for name in ("lr_rampup_kimg", "ema_rampup", "r1_gamma_sum", "P_std"):
            number(name, 0)
        number("r1_gamma", 0, none=True)
        if not isinstance(self.P_mean, (int, float)) or isinstance(self.P_mean, bool) or not math.isfinite(self.P_mean):
            raise ConfigError(f"P_mean: expected a number, got {shown(self.P_mean)}")
        betas = self.betas
        if not (isinstance(betas, (list, tuple)) and len(betas) == 2
                and all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)):
            raise ConfigError(f"betas: expected two numbers in [0, 1), e.g. [0.0, 0.99]; got {shown(betas)}")
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
                raise ConfigError(f"{name}: expected a JSON object, got {shown(getattr(self, name))}")
        try:  # bounded before anything is built from them
            check_network_config(self.arch, "arch")
            check_network_config(self.discriminator_kwargs, "discriminator_kwargs")
        except NetworkConfigError as exc:
            raise ConfigError(str(exc)) from None
        for name in PATH_KEYS + ("objective", "precond"):
            value = getattr(self, name)
            if not (isinstance(value, str) or (name == "teacher" and value is None)) or len(str(value)) > MAX_PATH:
                raise ConfigError(f"{name}: expected a path or name (a string of at most {MAX_PATH} characters), got "
                                  f"{shown(value)}")

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


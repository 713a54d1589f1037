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
import io
import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from tqdm import tqdm

from paperlib.checkpoints import atomic_write_bytes, generator_from_teacher, load_network, save_network
from paperlib.data import DatasetError, InMemoryDataset, open_dataset
from paperlib.diffusion import edm_loss, edm_sampler, edm_sigma
from paperlib.discriminators import build_discriminator
from paperlib.freezing import apply_freezing
from paperlib.losses import discriminator_loss, generator_loss, instance_loss, r1_loss
from paperlib.precond import build_network

OBJECTIVES = ("edm", "gdd", "instance")


class ConfigError(ValueError):
    """A training configuration is invalid or does not fit its data/teacher; the message says what was expected."""


@dataclass
class TrainConfig:
    """Everything that defines a training run. Units: images (``*_kimg`` in thousands), learning rates per step."""

    objective: str = "gdd"                     # edm (teacher from scratch) | gdd (GAN fine-tuning) | instance
    dataset: str = "digits-8:train"            # 'digits-8|16:train' or a path in EDM's dataset format
    conditional: bool = False
    run_dir: str = "runs/run"
    teacher: str | None = None                 # gdd/instance: teacher checkpoint (paperlib file or EDM .pkl)
    precond: str = "EDMPrecond"                # edm: preconditioner of the network trained from scratch
    arch: dict = field(default_factory=dict)   # edm: backbone kwargs (model_type, model_channels, ...)
    freeze_level: int = 0                      # GDD-I: 1 (paper), 0 = GDD
    discriminator: str = "small"               # small | projected
    discriminator_kwargs: dict = field(default_factory=dict)
    bn_group: int = 0                          # projected D: BatchNorm over groups of this many images (the
                                               # reference's per-process batch, 64; ImageNet 128); 0 = whole batch
    batch: int = 64                            # global batch (all ranks together)
    lr: float = 1e-4                           # generator / denoiser
    d_lr: float = 1e-4                         # discriminator (before the lazy-R1 correction x16/17)
    betas: list = field(default_factory=lambda: [0.0, 0.99])
    lr_rampup_kimg: float = 0.0                # edm: linear learning-rate warm-up
    total_kimg: float = 100.0
    ema_kimg: float = 500.0                    # EMA half-life cap (the reference's --ema, in kimg)
    ema_rampup: float = 0.05                   # half-life is at most this fraction of the images seen
    gan_loss: str = "ns"                       # ns | hinge
    r1_gamma: float | None = 1e-4              # in paperlib's mean-reduction convention (see paperlib.losses)
    r1_gamma_sum: float = 0.0                  # or the reference's gamma (losses summed over bn_group images), so
                                               # that the weight follows bn_group: r1_gamma = r1_gamma_sum / bn_group
    r1_interval: int = 16
    instance_steps: int = 18                   # instance: teacher Heun steps per target (NFE 2N-1)
    instance_loss: str = "l2"                  # l2 | pseudo_huber
    P_mean: float = -1.2
    P_std: float = 1.2
    sigma_data: float = 0.5
    seed: int = 0
    snapshot_kimg: float = 10.0
    keep_states: int = 2                       # training states kept on disk (network snapshots are all kept)
    log_kimg: float = 1.0
    device: str = "auto"                       # auto | cpu | cuda
    bf16: bool = False                         # generator in bfloat16 (GroupNorm/softmax stay fp32); CPU: opt-in
    channels_last: bool = False
    tf32: bool = False                         # CUDA: TF32 for fp32 convolutions and matmuls (off, as the reference)
    compile: bool = False                      # torch.compile the trained network's backbone (slow to build)
    fast_d: bool = False                       # projected D, opt-in: features in bf16 autocast, channels-last,
                                               # compiled on CUDA; TF32 on CUDA; R1 passes stay exact
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
        if self.batch < 1 or self.total_kimg <= 0:
            raise ConfigError(f"batch ({self.batch}) and total_kimg ({self.total_kimg}) must be positive")
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

    @property
    def r1_weight(self) -> float:
        """R1's gamma in paperlib's mean-over-samples convention (the loss's weight)."""
        return self.r1_gamma_sum / self.bn_group if self.r1_gamma_sum else self.r1_gamma

    @property
    def adam_eps(self) -> float:
        """Adam's epsilon. The reference's gradients are sums over each process's bn_group images, paperlib's are
        means, so its eps (1e-8) is divided by bn_group: Adam then takes exactly the reference's steps."""
        return 1e-8 / self.bn_group if self.bn_group else 1e-8


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


class Optimizer:
    """An Adam optimizer with the loop's gradient handling: cross-rank averaging and NaN/inf sanitising.

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
        self.optimizers: dict[str, Optimizer] = {}
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


class EDMObjective(Objective):
    """Denoising score matching with EDM's loss: trains a teacher from scratch."""

    def __init__(self, cfg, dist_info, dataset, device):
        super().__init__(cfg, dist_info)
        self.net = build_network(cfg.precond, img_resolution=dataset.resolution, img_channels=dataset.num_channels,
                                 label_dim=dataset.label_dim if cfg.conditional else 0, sigma_data=cfg.sigma_data, **cfg.arch).to(device).train()
        self.optimizers["net"] = Optimizer(self.net.parameters(), cfg.lr, cfg.betas, dist_info)

    def step(self, batch_idx, cur_nimg, images, labels, noise):
        sigma = noise([self.cfg.batch, 1, 1, 1])
        sigma = (sigma * self.cfg.P_std + self.cfg.P_mean).exp()
        n = noise([self.cfg.batch, *images.shape[1:]])
        loss = edm_loss(self.net, images, labels, sigma, n, self.cfg.sigma_data).mean()
        rampup = min(cur_nimg / max(self.cfg.lr_rampup_kimg * 1000, 1e-8), 1) if self.cfg.lr_rampup_kimg else 1
        self.optimizers["net"].step(loss, lr=self.cfg.lr * rampup)
        return dict(loss=loss.detach())


def build_student(cfg: TrainConfig, device) -> tuple[torch.nn.Module, dict]:
    """The one-step generator initialised from the teacher, frozen at ``cfg.freeze_level``: (net, freezing info)."""
    net = generator_from_teacher(cfg.teacher).to(device).train().requires_grad_(True)
    net.use_fp16 = net.bf16_on_cpu = cfg.bf16  # bf16 on GPU, and on CPU only when asked for explicitly
    return net, apply_freezing(net, cfg.freeze_level)


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
        self.D = build_discriminator(cfg.discriminator, self.net.img_resolution, self.net.img_channels,
                                     self.net.label_dim, **kwargs).to(device).train()
        self.extra_modules["D"] = self.D
        if cfg.fast_d:
            self.D.enable_fast(compile=device.type == "cuda")
        self.D_params = [p for p in self.D.trainable_parameters() if p.requires_grad]
        # StyleGAN2's lazy-regularisation correction of the D optimizer (R1 every r1_interval steps).
        ratio = cfg.r1_interval / (cfg.r1_interval + 1)
        self.optimizers["G"] = Optimizer(self.net.parameters(), cfg.lr, cfg.betas, dist_info, eps=cfg.adam_eps)
        self.optimizers["D"] = Optimizer(self.D_params, cfg.d_lr * ratio, [cfg.betas[0], cfg.betas[1] ** ratio], dist_info,
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
        logits_real = self.D(images, labels)
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


class InstanceObjective(Objective):
    """Instance-level distillation baseline: the one-step student regresses onto the teacher's Heun solution."""

    def __init__(self, cfg, dist_info, dataset, device):
        super().__init__(cfg, dist_info)
        self.net, self.info["freezing"] = build_student(cfg, device)
        self.teacher = load_network(cfg.teacher).to(device).eval()
        self.optimizers["G"] = Optimizer(self.net.parameters(), cfg.lr, cfg.betas, dist_info)

    def step(self, batch_idx, cur_nimg, images, labels, noise):
        z = noise([self.cfg.batch, self.net.img_channels, self.net.img_resolution, self.net.img_resolution])
        with torch.no_grad():
            target = edm_sampler(self.teacher, z, labels, num_steps=self.cfg.instance_steps).float()
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
            for images, labels in loader:
                yield images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)


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

def _state_paths(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("training-state-*.pt"))


def _save_state(path: Path, payload: dict) -> None:
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def train(cfg: TrainConfig, resume: bool = False, callback: Callable | None = None, callback_kimg: float = 0.0,
          progress: bool = True) -> dict:
    """Run (or resume) training; returns a summary dict. ``callback(kimg, ema_net) -> dict`` runs every
    ``callback_kimg`` and its numbers go into the metrics log (e.g. FID against training images)."""
    cfg.validate()
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device)
    dinfo = init_distributed(device.type)
    if device.type == "cuda":
        device = torch.device("cuda", dinfo.local_rank)
        torch.cuda.set_device(device)
    configure_backends(device, cfg.tf32 or cfg.fast_d)
    run_dir = Path(cfg.run_dir)
    existing = _state_paths(run_dir)
    if existing and not resume:
        raise ConfigError(f"{run_dir} already holds a run ({existing[-1].name}); pass --resume to continue it "
                          f"or choose another run_dir")
    is_main = dinfo.rank == 0
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(run_dir / "config.json", json.dumps(asdict(cfg), indent=2).encode())

    torch.manual_seed(cfg.seed)  # global stream: module init (e.g. teacher from scratch, D heads), dropout
    dataset = open_dataset(cfg.dataset, labels=cfg.conditional)
    if cfg.conditional and dataset.labels is None:
        raise ConfigError(f"{cfg.dataset}: a conditional run needs labels, and this dataset has none")
    objective = OBJECTIVE_CLASSES[cfg.objective](cfg, dinfo, dataset, device)
    net = objective.net
    try:
        dataset.check_compatible(net)
    except DatasetError as exc:
        raise ConfigError(f"teacher {cfg.teacher} does not fit the dataset: {exc}") from None
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    speed_up(objective, cfg)
    noise = SharedNoise(cfg.seed + 1, dinfo, device)
    cur_nimg = batch_idx = 0
    trained_seconds = 0.0  # wall time spent training, over every resumed part, callbacks excluded
    metrics_path = run_dir / "metrics.jsonl"

    if resume and existing:
        state = torch.load(existing[-1], map_location=device, weights_only=True)
        for name, module in objective.modules().items():
            module.load_state_dict(state["modules"][name])
        ema.load_state_dict(state["ema"])
        for name, opt in objective.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        noise.generator.set_state(state["noise_rng"].to(noise.generator.get_state().device))
        torch.set_rng_state(state["torch_rng"])
        cur_nimg, batch_idx = int(state["cur_nimg"]), int(state["batch_idx"])
        trained_seconds = float(state.get("trained_seconds", 0.0))
        if is_main and metrics_path.exists():  # drop log lines written after the state we resume from
            lines = [l for l in metrics_path.read_text().splitlines() if json.loads(l).get("nimg", 0) <= cur_nimg]
            atomic_write_bytes(metrics_path, ("\n".join(lines) + "\n" if lines else "").encode())

    stream = BatchStream(dataset, cfg.batch, cfg.seed, dinfo, device, cfg.num_workers).batches(batch_idx)
    total = int(cfg.total_kimg * 1000)
    snap_n, log_n = max(int(cfg.snapshot_kimg * 1000), 1), max(int(cfg.log_kimg * 1000), 1)
    cb_n = max(int(callback_kimg * 1000), 1) if callback else None
    info = dict(objective.info, params=sum(p.numel() for p in net.parameters()),
                trainable=sum(p.numel() for p in net.parameters() if p.requires_grad))
    if is_main:
        frozen = info.get("freezing")
        print(f"[paperlib] {cfg.objective} run in {run_dir}: {info['params']:,} parameters, {info['trainable']:,} trained"
              + (f", freeze level {frozen['level']}: {100 * frozen['frozen_fraction']:.2f}% frozen" if frozen else ""),
              flush=True)
    bar = tqdm(total=total, initial=min(cur_nimg, total), unit="img", unit_scale=True, disable=not (progress and is_main),
               desc=f"{cfg.objective}")
    window = dict(t=time.perf_counter(), n=cur_nimg)
    clock = dict(start=time.perf_counter(), callbacks=0.0)

    def seconds_trained() -> float:
        return trained_seconds + time.perf_counter() - clock["start"] - clock["callbacks"]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def snapshot() -> None:
        if not is_main:
            return
        payload = dict(config=json.dumps(asdict(cfg)), cur_nimg=cur_nimg, batch_idx=batch_idx,
                       modules={k: m.state_dict() for k, m in objective.modules().items()}, ema=ema.state_dict(),
                       optimizers={k: o.state_dict() for k, o in objective.optimizers.items()},
                       noise_rng=noise.generator.get_state(), torch_rng=torch.get_rng_state(),
                       trained_seconds=seconds_trained())
        _save_state(run_dir / f"training-state-{cur_nimg:09d}.pt", payload)
        for old in _state_paths(run_dir)[:-cfg.keep_states]:
            old.unlink()
        save_network(ema, run_dir / f"network-snapshot-{cur_nimg:09d}.safetensors",
                     extra=dict(kimg=cur_nimg / 1000, objective=cfg.objective, freeze_level=cfg.freeze_level))

    while cur_nimg < total:
        images, labels = next(stream)
        labels = labels if net.label_dim else None
        if cfg.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        stats = objective.step(batch_idx, cur_nimg, images, labels, noise)  # device tensors: no sync here
        beta = ema_beta(cfg.batch, cur_nimg, cfg.ema_kimg, cfg.ema_rampup)
        ema_update(ema, net, beta)
        prev, cur_nimg, batch_idx = cur_nimg, cur_nimg + cfg.batch, batch_idx + 1
        bar.update(min(cur_nimg, total) - min(prev, total))
        done = cur_nimg >= total
        if is_main and (cur_nimg // log_n > prev // log_n or done or (cb_n and cur_nimg // cb_n > prev // cb_n)):
            stats = {k: float(v) for k, v in stats.items()}
            now = time.perf_counter()
            record = dict(nimg=cur_nimg, kimg=cur_nimg / 1000, **stats, ema_beta=beta,
                          sanitized_steps=objective.sanitized_steps,
                          images_per_sec=(cur_nimg - window["n"]) / max(now - window["t"], 1e-9),
                          train_seconds=seconds_trained(),
                          peak_mem_mb=(torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0) / 2 ** 20)
            window.update(t=now, n=cur_nimg)
            if cb_n and (cur_nimg // cb_n > prev // cb_n or done):
                started = time.perf_counter()
                record.update(callback(cur_nimg / 1000, ema) or {})
                clock["callbacks"] += time.perf_counter() - started
                window["t"] += time.perf_counter() - started
            with open(metrics_path, "a") as f:
                f.write(json.dumps(record) + "\n")
            bar.set_postfix({k: f"{v:.3g}" for k, v in stats.items()})
        if cur_nimg // snap_n > prev // snap_n or done:
            snapshot()
    bar.close()
    if is_main:
        save_network(ema, run_dir / "network.safetensors",
                     extra=dict(kimg=cur_nimg / 1000, objective=cfg.objective, freeze_level=cfg.freeze_level))
    if dinfo.enabled:
        dist.barrier()
    return dict(info, run_dir=str(run_dir), nimg=cur_nimg, sanitized_steps=objective.sanitized_steps,
                train_seconds=seconds_trained())

"""The objectives a training run optimises, each one callable step: EDM denoising (a teacher from scratch), GDD's
adversarial fine-tuning of the one-step generator (GDD-I when frozen), and instance distillation; the gradient step
they share, and the discriminator as GDD builds and runs it.

Each objective owns the trained network ``net`` (whose EMA the loop keeps), its optimizers and any other trained
module; :func:`paperlib.training.train` knows them only through :class:`Objective`.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch
import torch.distributed as dist

from paperlib.config import ConfigError, TrainConfig, shown
from paperlib.data import DatasetError, ImageDataset, InMemoryDataset, open_dataset
from paperlib.devices import DistInfo
from paperlib.diffusion import edm_loss, edm_sampler, edm_schedule, edm_sigma
from paperlib.discriminator_training import FastPath, RealFeatureCache, TrainingDiscriminator
from paperlib.discriminators import build_discriminator
from paperlib.freezing import apply_freezing
from paperlib.instance_bank import bank_folder, bank_indices, load_or_build_bank
from paperlib.losses import discriminator_loss, generator_loss, instance_loss, r1_loss
from paperlib.precond import build_network
from paperlib.store.checkpoints import generator_from_teacher, load_network


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
        try:
            self.net = build_network(cfg.precond, img_resolution=dataset.resolution, img_channels=dataset.num_channels,
                                     label_dim=dataset.label_dim if cfg.conditional else 0, sigma_data=cfg.sigma_data,
                                     **cfg.arch).to(device).train()
        except (TypeError, ValueError) as exc:  # a key the architecture does not take, or a value it refuses
            raise ConfigError(f"arch {shown(cfg.arch)}: cannot build the {cfg.precond!r} network: "
                              f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
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
            self.info["instance_bank"] = dict(size=cfg.instance_bank, file=str(self.bank["path"]),
                                             digest=self.bank["digest"])

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


def build_objective(cfg: TrainConfig, dist_info: DistInfo, device) -> tuple[ImageDataset, Objective]:
    """The run's training data and its objective (networks built, teacher loaded), checked against each other: a
    conditional run needs labels and a conditional network, and the network must fit the images."""
    dataset = open_dataset(cfg.dataset, labels=cfg.conditional)
    if cfg.conditional and dataset.labels is None:
        raise ConfigError(f"{cfg.dataset}: a conditional run needs labels, and this dataset has none")
    objective = OBJECTIVE_CLASSES[cfg.objective](cfg, dist_info, dataset, device)
    if cfg.conditional and not objective.net.label_dim:
        raise ConfigError(f"conditional is true but the teacher {cfg.teacher} is unconditional (label_dim 0)")
    try:
        dataset.check_compatible(objective.net)
    except DatasetError as exc:
        raise ConfigError(f"teacher {cfg.teacher} does not fit the dataset: {exc}") from None
    return dataset, objective


def speed_up(objective: Objective, cfg: TrainConfig) -> None:
    """Layout and compilation choices that keep the step's maths: channels-last for every module, and
    torch.compile of the trained network's backbone (not of D, whose R1 term needs double backward, which compiled
    graphs do not support). Call after the EMA copy is taken: the EMA stays an ordinary module."""
    if cfg.channels_last:
        for module in objective.modules().values():
            module.to(memory_format=torch.channels_last)
    if cfg.compile:
        objective.net.model.compile()

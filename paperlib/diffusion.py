"""EDM diffusion: noise-level schedule, the Heun/Euler ODE samplers (with EDM's churn), per-seed random
generators, one-step generation, and EDM's denoising loss for training teachers.

Samplers are pure functions of (denoiser, latents, labels, options), in the style of k-diffusion.
Units: sigma is the noise standard deviation in data units (images in [-1, 1]); latents are N(0, I).
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from paperlib.precond import Denoiser, GDDPrecond


def sigma_steps(num_steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """EDM's time steps t_0 > ... > t_{N-1} >= sigma_min, then t_N = 0. Returns [N + 1] float64.

    t_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho; with N = 1, t_0 = sigma_max.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    if not 0 < sigma_min <= sigma_max:
        raise ValueError(f"need 0 < sigma_min <= sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}")
    i = torch.arange(num_steps, dtype=torch.float64, device=device)
    frac = i / (num_steps - 1) if num_steps > 1 else torch.zeros_like(i)
    t = (sigma_max ** (1 / rho) + frac * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([t, torch.zeros_like(t[:1])])


def nfe_of(num_steps: int, solver: str = "heun") -> int:
    """Denoiser evaluations of a sampler run: 2N - 1 for Heun (no correction on the last step), N for Euler."""
    return 2 * num_steps - 1 if solver == "heun" else num_steps


def edm_schedule(net: Callable, num_steps: int = 18, sigma_min: float = 0.002, sigma_max: float = 80.0,
                 rho: float = 7.0, device: torch.device | str = "cpu") -> torch.Tensor:
    """EDM's schedule for ``net`` (:func:`sigma_steps`), with sigma_min/sigma_max clamped to the network's supported
    range when it declares one. Returns [num_steps + 1] float64, ending in 0."""
    sigma_min = max(sigma_min, getattr(net, "sigma_min", 0.0))
    sigma_max = min(sigma_max, getattr(net, "sigma_max", float("inf")))
    return sigma_steps(num_steps, sigma_min, sigma_max, rho, device=device)


def edm_sampler(net: Callable, latents: torch.Tensor, t_steps: torch.Tensor, class_labels: torch.Tensor | None = None,
                solver: str = "heun", S_churn: float = 0.0, S_min: float = 0.0, S_max: float = float("inf"),
                S_noise: float = 1.0, randn_like: Callable[[torch.Tensor], torch.Tensor] = torch.randn_like,
                net_kwargs: dict | None = None) -> torch.Tensor:
    """EDM's sampler (Karras et al. 2022, Algorithm 2) along the noise levels ``t_steps`` (decreasing, [N + 1]
    ending in 0; :func:`edm_schedule` makes EDM's): deterministic when S_churn = 0.

    net: D(x; sigma, labels, **net_kwargs) -> denoised x. latents: [B, C, H, W] standard normal.
    Returns [B, C, H, W] float64.
    """
    if solver not in ("heun", "euler"):
        raise ValueError(f"solver must be 'heun' or 'euler', got {solver!r}")
    num_steps = len(t_steps) - 1
    t_steps = t_steps.to(latents.device, torch.float64)
    net_kwargs = net_kwargs or {}
    x_next = latents.to(torch.float64) * t_steps[0]
    for i, (t_cur, t_next) in enumerate(zip(t_steps[:-1], t_steps[1:])):
        x_cur = x_next
        gamma = min(S_churn / num_steps, math.sqrt(2) - 1) if S_min <= t_cur <= S_max else 0.0
        t_hat = t_cur + gamma * t_cur
        # EDM draws the churn noise at every step, even with gamma = 0, so the random stream matches its sampler.
        x_hat = x_cur + (t_hat ** 2 - t_cur ** 2).sqrt() * S_noise * randn_like(x_cur)
        d_cur = (x_hat - net(x_hat, t_hat, class_labels, **net_kwargs).to(torch.float64)) / t_hat
        x_next = x_hat + (t_next - t_hat) * d_cur
        if solver == "heun" and i < num_steps - 1:
            d_prime = (x_next - net(x_next, t_next, class_labels, **net_kwargs).to(torch.float64)) / t_next
            x_next = x_hat + (t_next - t_hat) * (0.5 * d_cur + 0.5 * d_prime)
    return x_next


class SeedRandom:
    """One torch.Generator per seed, so that every sample of a batch can be regenerated alone (as EDM's generate.py).

    ``randn([B, ...])`` stacks one draw per seed; ``len(seeds)`` must equal B.
    """

    def __init__(self, seeds: Sequence[int], device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.generators = [torch.Generator(self.device).manual_seed(int(s) % (1 << 32)) for s in seeds]

    def randn(self, size: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.stack([torch.randn(size[1:], generator=g, device=self.device, dtype=dtype) for g in self.generators])

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        return self.randn(x.shape, dtype=x.dtype)

    def randint(self, high: int) -> torch.Tensor:
        """One integer in [0, high) per seed: [B] int64."""
        return torch.stack([torch.randint(high, size=(), generator=g, device=self.device) for g in self.generators])


class Seeds(Sequence):
    """Seeds as inclusive ranges that are never expanded as a whole: length, indexing and slicing (a slice is a
    list) cost what they return, so '0-999999999' takes no memory until a batch of it is sampled."""

    def __init__(self, ranges: list[range]):
        self.ranges = ranges
        self._ends = list(itertools.accumulate(len(r) for r in ranges))

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"seed index {index} out of range for {len(self)} seeds")
        k = bisect.bisect_right(self._ends, index)
        return self.ranges[k][index - (self._ends[k - 1] if k else 0)]

    def __iter__(self):
        return itertools.chain.from_iterable(self.ranges)


MAX_SEED = 2 ** 32 - 1


def parse_seeds(text: str) -> Seeds:
    """'0-63' or '1,5,10-12' -> the seeds, non-negative ints (ranges inclusive, as EDM's generate.py), lazily."""
    ranges = []
    for part in str(text).split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match or int(match[2] or match[1]) < int(match[1]):
            raise ValueError(f"cannot parse seeds {text!r}: expected e.g. '0-63' or '1,5,10-12'")
        if int(match[2] or match[1]) > MAX_SEED:
            raise ValueError(f"seeds {text!r}: a seed is at most {MAX_SEED} (2**32 - 1, as EDM's)")
        ranges.append(range(int(match[1]), int(match[2] or match[1]) + 1))
    return Seeds(ranges)


@dataclass
class SampleBatch:
    """Generated images: ``images`` [B, C, H, W] float in about [-1, 1]; ``labels`` [B] int64 class or -1; ``nfe``."""

    seeds: list[int]
    images: torch.Tensor
    labels: torch.Tensor
    nfe: int


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[B, C, H, W] images in [-1, 1] -> [B, H, W, C] uint8, with EDM's rounding (x * 127.5 + 128, clipped)."""
    return (images * 127.5 + 128).clip(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def generate(net: Denoiser, seeds: Sequence[int], num_steps: int | None = None, class_idx: int | None = None,
             device: torch.device | str = "cpu", solver: str = "heun", bf16: bool = False,
             **sampler_kwargs) -> SampleBatch:
    """Sample one image per seed: one step for a GDD generator, EDM's sampler for any other denoiser.

    As in EDM's generate.py, each seed's generator draws the latent first and then, for a conditional network
    and ``class_idx=None``, the class. ``num_steps`` defaults to 1 for a GDD generator and 18 (NFE 35) otherwise.
    Precision, as the authors' samplers: a GDD generator runs in fp32 (GDD's generate.py passes force_fp32), a
    ``use_fp16`` diffusion network in float16 on CUDA (EDM's generate.py). ``bf16=True`` runs both in the training
    precision instead (bfloat16 on CUDA when ``use_fp16``).
    """
    seeds = list(seeds)
    rnd = SeedRandom(seeds, device)
    latents = rnd.randn([len(seeds), net.img_channels, net.img_resolution, net.img_resolution])
    labels = torch.full((len(seeds),), -1, dtype=torch.int64)
    onehot = None
    if net.label_dim:
        if class_idx is not None:
            if not 0 <= class_idx < net.label_dim:
                raise ValueError(f"class {class_idx} is outside this network's classes 0..{net.label_dim - 1}")
            labels = torch.full((len(seeds),), class_idx, dtype=torch.int64)
        else:
            labels = rnd.randint(net.label_dim).cpu()
        onehot = torch.nn.functional.one_hot(labels, net.label_dim).to(torch.float32).to(device)
    elif class_idx is not None:
        raise ValueError("a class was requested but this network is unconditional")
    if isinstance(net, GDDPrecond):
        if num_steps not in (None, 1):
            raise ValueError(f"this checkpoint is a one-step GDD generator; --steps must be 1, got {num_steps}")
        return SampleBatch(seeds, net.generate(latents, onehot, force_fp32=not bf16).float(), labels, 1)
    num_steps = 18 if num_steps is None else num_steps
    schedule = {k: sampler_kwargs.pop(k) for k in ("sigma_min", "sigma_max", "rho") if k in sampler_kwargs}
    t_steps = edm_schedule(net, num_steps, device=device, **schedule)
    images = edm_sampler(net, latents, t_steps, onehot, solver=solver, randn_like=rnd.randn_like,
                         net_kwargs={} if bf16 else dict(half_dtype=torch.float16), **sampler_kwargs)
    return SampleBatch(seeds, images.float(), labels, nfe_of(num_steps, solver))


def edm_sigma(normal: torch.Tensor, P_mean: float = -1.2, P_std: float = 1.2) -> torch.Tensor:
    """EDM's training noise levels, ln(sigma) ~ N(P_mean, P_std^2), from standard normal draws ``normal``
    ([B, 1, 1, 1]; the caller's random stream). Returns a tensor of the same shape."""
    return (normal * P_std + P_mean).exp()


def edm_loss(net: Denoiser, images: torch.Tensor, class_labels: torch.Tensor | None, sigma: torch.Tensor,
             noise: torch.Tensor, sigma_data: float = 0.5, augment_labels: torch.Tensor | None = None) -> torch.Tensor:
    """EDM's denoising loss (Karras et al. 2022, eq. 2 with Table 1's weighting), per pixel: [B, C, H, W].

    sigma: [B, 1, 1, 1] noise levels (see :func:`edm_sigma`); noise: [B, C, H, W] standard normal.
    loss = lambda(sigma) (D(y + sigma n; sigma) - y)^2 with lambda = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2.
    """
    weight = (sigma ** 2 + sigma_data ** 2) / (sigma * sigma_data) ** 2
    denoised = net(images + noise * sigma, sigma, class_labels, augment_labels=augment_labels)
    return weight * (denoised - images) ** 2

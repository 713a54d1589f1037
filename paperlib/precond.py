"""Denoiser preconditioning (EDM, VE, VP) and the GDD one-step generator.

Every wrapper owns a backbone ``self.model`` (SongUNet or DhariwalUNet) and no parameters of its own, so its
state-dict keys are ``model.<backbone key>``, exactly as in EDM and GDD checkpoints. A wrapper computes
D(x; sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x; c_noise(sigma)).

Shapes: x [B, C, R, R] in data units (images in [-1, 1] plus noise of std sigma), sigma a scalar or [B],
class_labels [B, label_dim] one-hot (or soft) labels. Output [B, C, R, R] fp32.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from paperlib.nets import ARCHITECTURES

GDD_SIGMA = 80.0  # the noise level at which GDD's one-step generator is evaluated (EDM's sigma_max)


def _plain(value: Any) -> Any:
    """Numpy scalars and tuples in checkpoint kwargs -> plain JSON-able Python values."""
    if hasattr(value, "item") and not isinstance(value, torch.Tensor):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class Denoiser(nn.Module):
    """Base preconditioner: subclasses define ``coefficients(sigma)``.

    ``use_fp16`` keeps EDM's keyword name; paperlib runs the backbone in bfloat16 when it is set and the input
    is on CUDA (as the GDD reference does; fp16 without loss scaling is unsafe), or on the CPU too when
    ``bf16_on_cpu`` is set (an opt-in for training on CPUs with bf16 units; checkpoints never turn it on).
    A call may ask for another half type (``half_dtype=torch.float16``, as EDM's own sampling runs such a network)
    or for fp32 (``force_fp32``, as GDD's sampling). GroupNorm and the attention softmax stay in fp32, and the
    output is returned in fp32.
    """

    sigma_min_default = 0.0
    sigma_max_default = float("inf")
    bf16_on_cpu = False

    def __init__(self, img_resolution: int, img_channels: int, label_dim: int = 0, use_fp16: bool = False,
                 sigma_min: float | None = None, sigma_max: float | None = None, model_type: str = "DhariwalUNet",
                 **model_kwargs):
        super().__init__()
        if model_type not in ARCHITECTURES:
            raise ValueError(f"unknown model_type {model_type!r}; expected one of {sorted(ARCHITECTURES)}")
        self.img_resolution = int(img_resolution)
        self.img_channels = int(img_channels)
        self.label_dim = int(label_dim)
        self.use_fp16 = bool(use_fp16)
        self.sigma_min = float(self.sigma_min_default if sigma_min is None else sigma_min)
        self.sigma_max = float(self.sigma_max_default if sigma_max is None else sigma_max)
        self.model_type = model_type
        model_kwargs = _plain(model_kwargs)
        self.model = ARCHITECTURES[model_type](img_resolution=self.img_resolution, in_channels=self.img_channels,
                                               out_channels=self.img_channels, label_dim=self.label_dim, **model_kwargs)
        self.model_kwargs = model_kwargs

    @property
    def init_kwargs(self) -> dict:
        """The keyword arguments that rebuild this network (JSON-able)."""
        return dict(img_resolution=self.img_resolution, img_channels=self.img_channels, label_dim=self.label_dim,
                    use_fp16=self.use_fp16, sigma_min=self.sigma_min, sigma_max=self.sigma_max,
                    model_type=self.model_type, **self._extra_kwargs(), **self.model_kwargs)

    def _extra_kwargs(self) -> dict:
        return {}

    def coefficients(self, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(c_skip, c_out, c_in, c_noise) for sigma of shape [B, 1, 1, 1]; c_noise is returned flattened to [B]."""
        raise NotImplementedError

    def check_labels(self, class_labels: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        """Validate conditioning: a conditional network needs [B, label_dim] labels; an unconditional one none."""
        if self.label_dim == 0:
            if class_labels is not None and class_labels.numel() > 0:
                raise ValueError("this network is unconditional (label_dim=0) but class labels were given")
            return None
        if class_labels is None:
            raise ValueError(f"this network is class-conditional (label_dim={self.label_dim}) and needs class labels "
                             f"of shape [B, {self.label_dim}]; none were given")
        if tuple(class_labels.shape) != (batch, self.label_dim):
            raise ValueError(f"class labels have shape {list(class_labels.shape)}; expected [{batch}, {self.label_dim}] "
                             f"(one-hot rows)")
        return class_labels.to(torch.float32)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float, class_labels: torch.Tensor | None = None,
                augment_labels: torch.Tensor | None = None, force_fp32: bool = False,
                half_dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.img_channels or x.shape[2] != self.img_resolution or x.shape[3] != self.img_resolution:
            raise ValueError(f"input has shape {list(x.shape)}; this network expects "
                             f"[B, {self.img_channels}, {self.img_resolution}, {self.img_resolution}]")
        x = x.to(torch.float32)
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1, 1, 1, 1)
        if sigma.shape[0] == 1 and x.shape[0] != 1:
            sigma = sigma.expand(x.shape[0], 1, 1, 1)
        labels = self.check_labels(class_labels, x.shape[0])
        half = self.use_fp16 and not force_fp32 and (x.device.type == "cuda" or self.bf16_on_cpu)
        dtype = half_dtype if half else torch.float32
        c_skip, c_out, c_in, c_noise = self.coefficients(sigma)
        F_x = self.model((c_in * x).to(dtype), c_noise.flatten(), class_labels=labels, augment_labels=augment_labels)
        return c_skip * x + c_out * F_x.to(torch.float32)


class EDMPrecond(Denoiser):
    """EDM preconditioning (Karras et al. 2022, Table 1), sigma_data = 0.5 by default. ``net(x, sigma, class_labels)``:
    noisy images x [B, C, R, R] at noise level sigma (a float or [B], in image units, data in [-1, 1]) and one-hot
    labels [B, label_dim] (conditional networks) -> the denoised images [B, C, R, R], float32."""

    def __init__(self, *args, sigma_data: float = 0.5, **kwargs):
        self.sigma_data = float(sigma_data)
        super().__init__(*args, **kwargs)

    def _extra_kwargs(self) -> dict:
        return dict(sigma_data=self.sigma_data)

    def coefficients(self, sigma):
        sd = self.sigma_data
        c_skip = sd ** 2 / (sigma ** 2 + sd ** 2)
        c_out = sigma * sd / (sigma ** 2 + sd ** 2).sqrt()
        c_in = 1 / (sd ** 2 + sigma ** 2).sqrt()
        return c_skip, c_out, c_in, sigma.log() / 4


class GDDPrecond(EDMPrecond):
    """GDD's boundary-form preconditioning (the authors' ``training/networks.py::GDDPrecond``) and the one-step generator.

    c_skip = sd^2 / ((sigma - eps)^2 + sd^2), c_out = (sigma - eps) sd / sqrt(sigma^2 + sd^2), so that
    D(x; eps) = x; c_in and c_noise equal EDM's, so EDM teacher weights drop in unchanged.
    """

    def __init__(self, *args, eps: float = 2e-3, **kwargs):
        self.eps = float(eps)
        super().__init__(*args, **kwargs)

    def _extra_kwargs(self) -> dict:
        return dict(sigma_data=self.sigma_data, eps=self.eps)

    def coefficients(self, sigma):
        sd, eps = self.sigma_data, self.eps
        c_skip = sd ** 2 / ((sigma - eps) ** 2 + sd ** 2)
        c_out = (sigma - eps) * sd / (sigma ** 2 + sd ** 2).sqrt()
        c_in = 1 / (sigma ** 2 + sd ** 2).sqrt()
        return c_skip, c_out, c_in, sigma.log() / 4

    def generate(self, z: torch.Tensor, class_labels: torch.Tensor | None = None, force_fp32: bool = False) -> torch.Tensor:
        """One-step sample G(z) = D_gdd(80 z; 80): z [B, C, R, R] standard normal -> image [B, C, R, R] (about [-1, 1])."""
        return self(z.to(torch.float32) * GDD_SIGMA, GDD_SIGMA, class_labels, force_fp32=force_fp32)


class VEPrecond(Denoiser):
    """Variance-exploding preconditioning (Song et al. 2021) as in EDM's baselines; called as :class:`EDMPrecond`
    (x [B, C, R, R], sigma float or [B] -> denoised [B, C, R, R])."""

    sigma_min_default = 0.02
    sigma_max_default = 100.0

    def coefficients(self, sigma):
        one = torch.ones_like(sigma)
        return one, sigma, one, (0.5 * sigma).log()


class VPPrecond(Denoiser):
    """Variance-preserving preconditioning (Song et al. 2021) as in EDM's baselines; called as :class:`EDMPrecond`
    (x [B, C, R, R], sigma float or [B] -> denoised [B, C, R, R])."""

    def __init__(self, *args, beta_d: float = 19.9, beta_min: float = 0.1, M: int = 1000, epsilon_t: float = 1e-5, **kwargs):
        self.beta_d, self.beta_min, self.M, self.epsilon_t = float(beta_d), float(beta_min), int(M), float(epsilon_t)
        kwargs.setdefault("sigma_min", self.sigma_of_t(epsilon_t))
        kwargs.setdefault("sigma_max", self.sigma_of_t(1.0))
        super().__init__(*args, **kwargs)

    def _extra_kwargs(self) -> dict:
        return dict(beta_d=self.beta_d, beta_min=self.beta_min, M=self.M, epsilon_t=self.epsilon_t)

    def sigma_of_t(self, t: float) -> float:
        t = torch.as_tensor(t, device="cpu")  # fp32, as EDM computes sigma_min/sigma_max
        return float(((0.5 * self.beta_d * t ** 2 + self.beta_min * t).exp() - 1).sqrt())

    def t_of_sigma(self, sigma: torch.Tensor) -> torch.Tensor:
        return ((self.beta_min ** 2 + 2 * self.beta_d * (1 + sigma ** 2).log()).sqrt() - self.beta_min) / self.beta_d

    def coefficients(self, sigma):
        one = torch.ones_like(sigma)
        return one, -sigma, 1 / (sigma ** 2 + 1).sqrt(), (self.M - 1) * self.t_of_sigma(sigma)


PRECONDITIONERS = {cls.__name__: cls for cls in (EDMPrecond, GDDPrecond, VEPrecond, VPPrecond)}


def build_network(precond: str, **init_kwargs) -> Denoiser:
    """Build a denoiser from a preconditioner name and EDM-style init kwargs (those of an EDM pickle's root)."""
    if precond not in PRECONDITIONERS:
        raise ValueError(f"unknown preconditioner {precond!r}; expected one of {sorted(PRECONDITIONERS)}")
    return PRECONDITIONERS[precond](**init_kwargs)

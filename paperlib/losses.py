"""Losses: GAN losses (non-saturating or hinge), lazy R1, and the instance-level distillation baseline.

Reduction (a deliberate difference from the reference, the authors' ``training/loss.py::GDDLoss``): each loss is the mean over
samples of the per-sample mean over that sample's logits, summed over discriminator backbones. The reference sums
over the samples of each GPU instead, so its R1 term is relatively weaker by the per-GPU batch; presets express the
paper's R1 weight in this convention (gamma_ours = gamma_paper / per-GPU batch), which makes every run independent
of the number of GPUs. ``logits`` is always a list of [B, N_k] tensors, one per backbone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _per_sample(logits: list[torch.Tensor], fn) -> torch.Tensor:
    """Sum over backbones of the per-sample mean of fn(logits): [B]."""
    return sum(fn(l).flatten(1).mean(dim=1) for l in logits)


def generator_loss(logits_fake: list[torch.Tensor], kind: str = "ns") -> torch.Tensor:
    """G loss: non-saturating softplus(-D(G(z))) or hinge -D(G(z)). Scalar."""
    if kind == "ns":
        return _per_sample(logits_fake, lambda l: F.softplus(-l)).mean()
    if kind == "hinge":
        return _per_sample(logits_fake, lambda l: -l).mean()
    raise ValueError(f"unknown GAN loss {kind!r}; expected 'ns' or 'hinge'")


def discriminator_loss(logits_real: list[torch.Tensor], logits_fake: list[torch.Tensor], kind: str = "ns") -> torch.Tensor:
    """D loss: softplus(D(fake)) + softplus(-D(real)) (ns) or relu(1 + D(fake)) + relu(1 - D(real)) (hinge). Scalar."""
    if kind == "ns":
        fake, real = (lambda l: F.softplus(l)), (lambda l: F.softplus(-l))
    elif kind == "hinge":
        fake, real = (lambda l: F.relu(1 + l)), (lambda l: F.relu(1 - l))
    else:
        raise ValueError(f"unknown GAN loss {kind!r}; expected 'ns' or 'hinge'")
    return _per_sample(logits_fake, fake).mean() + _per_sample(logits_real, real).mean()


def r1_penalty(discriminator, real: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """Per-sample R1 penalty ||d(sum of all logits)/d x_b||^2 on real images at dataset resolution: [B].

    The graph is kept (create_graph) so the penalty can be minimised w.r.t. the discriminator.
    """
    real = real.detach().requires_grad_(True)
    logits = discriminator(real, labels)
    total = sum(l.sum() for l in logits)
    (grad,) = torch.autograd.grad(total, real, create_graph=True)
    return grad.square().flatten(1).sum(dim=1)


def r1_loss(discriminator, real: torch.Tensor, labels: torch.Tensor | None, gamma: float, interval: int) -> torch.Tensor:
    """Lazy R1 loss: mean_b(penalty_b) * gamma / 2 * interval (run every ``interval`` iterations). Scalar."""
    return r1_penalty(discriminator, real, labels).mean() * (gamma / 2) * interval


def instance_loss(student: torch.Tensor, target: torch.Tensor, kind: str = "l2", huber_c: float = 0.03) -> torch.Tensor:
    """Instance-level distillation: the student's one-step image regresses onto the teacher's ODE solution from
    the same noise. Per sample: l2 = mean squared error over pixels; pseudo_huber = sqrt(mse + c^2) - c, with c
    (``huber_c``) in per-pixel RMS units. Mean over samples. Scalar."""
    diff = (student - target.detach()).flatten(1)
    mse = diff.square().mean(dim=1)
    if kind == "l2":
        return mse.mean()
    if kind == "pseudo_huber":
        return ((mse + huber_c ** 2).sqrt() - huber_c).mean()
    raise ValueError(f"unknown instance loss {kind!r}; expected 'l2' or 'pseudo_huber'")

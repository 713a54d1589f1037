"""How a discriminator is run during training, apart from the model itself (:mod:`paperlib.discriminators`, the
authors' design): the opt-in fast path of the projected discriminator and the cache of the training images' frozen
features. :class:`TrainingDiscriminator` wraps a model with either or both; the objective sees only its call,
:meth:`~TrainingDiscriminator.exact` (the faithful path, for R1) and the trainable parameters.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Callable

import torch
from torch import nn

from paperlib.discriminators import ProjectedDiscriminator


@contextlib.contextmanager
def tf32(enabled: bool):
    """TF32 for CUDA convolutions and matmuls set to ``enabled`` inside the block, and restored after it."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


class RealFeatureCache:
    """The frozen feature maps (backbone and random projection) of the training images [N, C, R, R], each computed
    the first time a batch holding it comes without needing an input gradient (the discriminator step on reals; R1
    needs the gradient and recomputes) and looked up from then on. The maps are computed in chunks of ``batch``
    images (this process's training batch, a short chunk padded to it): a map depends on the batch size the
    convolutions see, not on the other images in the batch, so a looked-up map equals a recomputed one bit for bit
    (tested). Computing on first use, not all up front, keeps a run of a few steps from paying for every image.
    ``feature_maps(k, x)`` is the path training takes (the model's, or the fast path's). For in-memory datasets
    (digits: about 100 KB per image)."""

    def __init__(self, feature_maps: Callable[[int, torch.Tensor], list[torch.Tensor]], backbones: int,
                 images: torch.Tensor, batch: int):
        self.feature_maps, self.backbones, self.images, self.batch = feature_maps, backbones, images, batch
        self.index = {key: i for i, key in enumerate(_image_keys(images))}
        self.known = torch.zeros(len(images), dtype=torch.bool)
        self.maps: list[list[torch.Tensor]] = []  # per backbone, per level: [N, C_l, R_l, R_l], once first computed

    @torch.no_grad()
    def _compute(self, rows: list[int]) -> None:
        for start in range(0, len(rows), self.batch):
            chunk = rows[start:start + self.batch]
            padded = torch.tensor(chunk + chunk[:1] * (self.batch - len(chunk)), device=self.images.device)
            for k in range(self.backbones):
                maps = self.feature_maps(k, self.images[padded])
                if len(self.maps) <= k:
                    self.maps.append([m.new_zeros((len(self.images), *m.shape[1:])) for m in maps])
                for store, m in zip(self.maps[k], maps):
                    store[chunk] = m[:len(chunk)]
            self.known[chunk] = True

    def lookup(self, x: torch.Tensor) -> list[list[torch.Tensor]] | None:
        """The maps of images ``x`` per backbone and level (computed first where new), or None when one is not a
        training image or ``x`` needs a gradient."""
        if x.requires_grad:
            return None
        rows = [self.index.get(key) for key in _image_keys(x)]
        if None in rows:
            return None
        new = sorted({r for r in rows if not self.known[r]})
        if new:
            self._compute(new)
        index = torch.tensor(rows, device=self.maps[0][0].device)
        return [[level[index] for level in maps] for maps in self.maps]


def _image_keys(images: torch.Tensor) -> list[bytes]:
    """Each image's bytes: the key under which its cached feature maps are found."""
    flat = images.detach().to("cpu", torch.float32).contiguous().flatten(1).numpy()
    return [row.tobytes() for row in flat]


class FastPath:
    """The projected discriminator's opt-in fast path (``TrainConfig.fast_d``): the frozen feature networks in bf16
    autocast on channels-last inputs resized by matrix products; the heads in fp32 with TF32 on CUDA (set only
    inside the call). ``compile``: each backbone's whole path from images to logits (features and heads) is compiled,
    so the heads' BatchNorm and LeakyReLU fuse with their neighbours."""

    def __init__(self, model: ProjectedDiscriminator, compile: bool = False):
        self.model = model
        model.features.to(memory_format=torch.channels_last)
        self.compiled = ([torch.compile(functools.partial(self.logits, k)) for k in range(len(model.heads))]
                         if compile else None)

    def feature_maps(self, k: int, x: torch.Tensor) -> list[torch.Tensor]:
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            maps = self.model.feature_maps(k, x, resize_by_matmul=True)
        return [m.float() for m in maps]

    def logits(self, k: int, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.model.heads_logits(k, self.feature_maps(k, x), labels)

    def __call__(self, x: torch.Tensor, labels: torch.Tensor | None) -> list[torch.Tensor]:
        with tf32(x.is_cuda):
            if self.compiled:
                return [run(x, labels) for run in self.compiled]
            return [self.logits(k, x, labels) for k in range(len(self.model.heads))]


class TrainingDiscriminator:
    """A discriminator model as training runs it: ``D(x, labels, reals=False)`` gives its logits, through the fast
    path when there is one, from the reals' cache when ``reals`` and the images are cached; inside :meth:`exact` the
    faithful fp32 path of the model alone (the fast path's weights stay channels-last, which changes only the
    rounding)."""

    def __init__(self, model: nn.Module, fast: FastPath | None = None, cache: RealFeatureCache | None = None):
        self.model, self.fast, self.cache = model, fast, cache
        self._exact = False

    def trainable_parameters(self):
        return self.model.trainable_parameters()

    @contextlib.contextmanager
    def exact(self):
        """The faithful fp32 path, without autocast, TF32 or compiled graphs, for the passes of this block: R1,
        whose double backward compiled graphs do not support, and whose penalty should not see bf16 rounding."""
        self._exact = True
        try:
            with tf32(False):
                yield
        finally:
            self._exact = False

    def __call__(self, x: torch.Tensor, labels: torch.Tensor | None, reals: bool = False) -> list[torch.Tensor]:
        """Logits per backbone. ``reals``: ``x`` is a batch of training images, whose frozen feature maps are looked
        up in the cache when it holds them (generated batches never are, so they skip the lookup)."""
        cached = self.cache.lookup(x) if reals and self.cache is not None else None
        if cached is not None:
            with tf32(x.is_cuda and self.fast is not None and not self._exact):  # the heads as the fast path runs them
                return [self.model.heads_logits(k, maps, labels) for k, maps in enumerate(cached)]
        if self.fast is not None and not self._exact:
            return self.fast(x, labels)
        return self.model(x, labels)
